"""Turn latency and throughput through the REST channel, ours against a stock `rasa init` bot."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.runtime import Service, wait_until_ready
from bot.training import default_cache_dir, rasa_env

# What a customer of each bot would say; ours exercises NLU, rules, the response selector.
# Senders are demo members (identified at session start), so turns 2-4 read the CRM.
OUR_SCRIPT = ["你好", "我的订单到哪了", "空气炸锅保修多久", "我还有多少积分", "谢谢"]
CRM_TURN = 1  # "我的订单到哪了": the member's recent orders from the CRM, as buttons
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
    p50_by_turn: tuple[float, ...] = ()  # median latency of each message of the script


async def _conversation(
    session: aiohttp.ClientSession,
    url: str,
    script: Sequence[str],
    latencies: list[tuple[int, float]],
    sender: str,
    headers: Mapping[str, str],
) -> int:
    errors = 0
    for turn, message in enumerate(script):
        started = time.perf_counter()
        body = {"sender": sender, "message": message}
        async with session.post(url, json=body, headers=dict(headers)) as response:
            await response.read()
            errors += response.status != 200
        latencies.append((turn, (time.perf_counter() - started) * 1000))
    return errors


async def load(
    bot: str,
    base_url: str,
    script: Sequence[str],
    concurrency: int,
    conversations: int,
    senders: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """Runs `conversations` scripted conversations, `concurrency` at a time (bounded); each
    conversation is a new sender, or the next of `senders` (each used once per level)."""
    url = f"{base_url}/webhooks/rest/webhook"
    timed: list[tuple[int, float]] = []
    pool = iter(senders) if senders else None

    def next_sender() -> str:
        return next(pool, "") if pool else f"bench-{uuid.uuid4().hex}"

    credential = headers or {}
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(sender: str) -> int:
            async with gate:
                return await _conversation(session, url, script, timed, sender, credential)

        await _conversation(session, url, script, [], next_sender(), credential)  # warm-up
        chosen = [next_sender() for _ in range(conversations)]
        started = time.perf_counter()
        errors = sum(await asyncio.gather(*(one(sender) for sender in chosen)))
        elapsed = time.perf_counter() - started
    latencies = [ms for _, ms in timed]
    by_turn = tuple(
        statistics.median(ms for turn, ms in timed if turn == index) for index in range(len(script))
    )
    quantiles = statistics.quantiles(latencies, n=20)
    return LoadResult(
        bot=bot,
        concurrency=concurrency,
        messages=len(latencies),
        p50_ms=statistics.median(latencies),
        p95_ms=quantiles[18],
        throughput=len(latencies) / elapsed,
        errors=errors,
        p50_by_turn=by_turn,
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
    bot: str,
    base_url: str,
    script: Sequence[str],
    pid: int,
    conversations: int,
    senders: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
) -> tuple[list[LoadResult], float]:
    """Each concurrency level gets its own slice of `senders`, so every conversation is new."""
    per_level = conversations + 1
    results = [
        asyncio.run(
            load(
                bot,
                base_url,
                script,
                concurrency,
                conversations,
                senders[level * per_level : (level + 1) * per_level],
                headers,
            )
        )
        for level, concurrency in enumerate(CONCURRENCY)
    ]
    return results, resident_mb(pid)


def crm_turn_rows(ours: Sequence[LoadResult], stock: Sequence[LoadResult]) -> list[str]:
    """The CRM-backed turn (order status) beside the stock bot's median turn, per level."""
    rows = [
        "| concurrency | carebot order status p50 ms | stock rasa init p50 ms (any turn) "
        "| ratio (stock/ours) |",
        "| --- | --- | --- | --- |",
    ]
    for mine, theirs in zip(ours, stock, strict=True):
        crm_ms = mine.p50_by_turn[CRM_TURN]
        rows.append(
            f"| {mine.concurrency} | {crm_ms:.0f} | {theirs.p50_ms:.0f} "
            f"| {theirs.p50_ms / crm_ms:.2f}× |"
        )
    return rows


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
