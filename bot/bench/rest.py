"""Turn latency and throughput through the REST channel, ours against a stock `rasa init` bot."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.runtime import Service, wait_until_ready
from bot.training import default_cache_dir, rasa_env

# What a customer of each bot would say; ours exercises NLU, rules, the response selector.
OUR_SCRIPT = ["你好", "我的订单DD202611020387到哪了", "空气炸锅保修多久", "我还有多少积分", "谢谢"]
STOCK_SCRIPT = ["hello", "I am feeling sad", "yes", "are you a bot?", "goodbye"]
CONCURRENCY = (1, 10, 50)


@dataclass(frozen=True)
class LoadResult:
    bot: str
    concurrency: int
    messages: int
    p50_ms: float
    p95_ms: float
    throughput: float  # messages per second
    errors: int


async def _conversation(
    session: aiohttp.ClientSession, url: str, script: Sequence[str], latencies: list[float]
) -> int:
    sender, errors = f"bench-{uuid.uuid4().hex}", 0
    for message in script:
        started = time.perf_counter()
        async with session.post(url, json={"sender": sender, "message": message}) as response:
            await response.read()
            errors += response.status != 200
        latencies.append((time.perf_counter() - started) * 1000)
    return errors


async def load(
    bot: str, base_url: str, script: Sequence[str], concurrency: int, conversations: int
) -> LoadResult:
    """Runs `conversations` scripted conversations, `concurrency` at a time (bounded)."""
    url = f"{base_url}/webhooks/rest/webhook"
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one() -> int:
            async with gate:
                return await _conversation(session, url, script, latencies)

        await _conversation(session, url, script, [])  # warm-up, not measured
        started = time.perf_counter()
        errors = sum(await asyncio.gather(*(one() for _ in range(conversations))))
        elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=20)
    return LoadResult(
        bot=bot,
        concurrency=concurrency,
        messages=len(latencies),
        p50_ms=statistics.median(latencies),
        p95_ms=quantiles[18],
        throughput=len(latencies) / elapsed,
        errors=errors,
    )


def resident_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MiB."""
    total_kb = 0
    for each in _with_descendants(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        total_kb += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    return total_kb / 1024


def _with_descendants(pid: int) -> set[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found = {pid}
    for _ in range(10):
        found |= {child for child, parent in parents.items() if parent in found}
    return found


def stock_init_bot(port: int) -> tuple[Service, Path]:
    """A stock `rasa init` assistant (trained once, kept in the cache) and its project folder."""
    project = default_cache_dir().parent / "bench" / "rasa-init"
    if not (project / "models").exists() or not any((project / "models").glob("*.tar.gz")):
        project.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "rasa", "init", "--no-prompt", "--init-dir", str(project)],
            env=rasa_env(),
            check=True,
            capture_output=True,
        )
    service = Service(
        name="rasa-init",
        command=[sys.executable, "-m", "rasa", "run", "--port", str(port)]
        + ["--interface", "127.0.0.1"],
        health_url=f"http://127.0.0.1:{port}/",
        env=rasa_env(),
    )
    return service, project


def measure(
    bot: str, base_url: str, script: Sequence[str], pid: int, conversations: int
) -> tuple[list[LoadResult], float]:
    results = [
        asyncio.run(load(bot, base_url, script, concurrency, conversations))
        for concurrency in CONCURRENCY
    ]
    return results, resident_mb(pid)


def start(service: Service, cwd: Path, log: Path) -> None:
    service.start(cwd, log)
    wait_until_ready(service)


def pairs(ours: Sequence[LoadResult], stock: Sequence[LoadResult]) -> list[str]:
    rows = [
        "| concurrency | bot | p50 ms | p95 ms | msg/s | errors | p50 ratio (stock/ours) "
        "| throughput ratio (ours/stock) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mine, theirs in itertools.product(ours, stock):
        if mine.concurrency != theirs.concurrency:
            continue
        rows.append(_load_row(theirs, "", ""))
        rows.append(
            _load_row(
                mine,
                f"{theirs.p50_ms / mine.p50_ms:.2f}×",
                f"{mine.throughput / theirs.throughput:.2f}×",
            )
        )
    return rows


def _load_row(r: LoadResult, latency_ratio: str, throughput_ratio: str) -> str:
    return (
        f"| {r.concurrency} | {r.bot} | {r.p50_ms:.0f} | {r.p95_ms:.0f} | {r.throughput:.1f} "
        f"| {r.errors} | {latency_ratio} | {throughput_ratio} |"
    )
