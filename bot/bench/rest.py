"""Turn latency and throughput through the REST channel, ours against a stock `rasa init` bot."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
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


@dataclass(frozen=True)
class Summary:
    """One bot at one concurrency level over the repeats: medians, and the p50's range."""

    bot: str
    concurrency: int
    repeats: int
    p50_ms: float
    p50_min_ms: float
    p50_max_ms: float
    p95_ms: float
    throughput: float
    throughput_min: float
    throughput_max: float
    errors: int
    crm_p50_ms: float  # the CRM-backed turn's p50 (ours); any turn's for the stock bot


def summarize(results: Sequence[LoadResult]) -> Summary:
    p50s = [r.p50_ms for r in results]
    rates = [r.throughput for r in results]
    crm = [r.p50_by_turn[CRM_TURN] if len(r.p50_by_turn) > CRM_TURN else r.p50_ms for r in results]
    return Summary(
        bot=results[0].bot,
        concurrency=results[0].concurrency,
        repeats=len(results),
        p50_ms=statistics.median(p50s),
        p50_min_ms=min(p50s),
        p50_max_ms=max(p50s),
        p95_ms=statistics.median(r.p95_ms for r in results),
        throughput=statistics.median(rates),
        throughput_min=min(rates),
        throughput_max=max(rates),
        errors=sum(r.errors for r in results),
        crm_p50_ms=statistics.median(crm),
    )


@dataclass(frozen=True)
class Contender:
    """A bot under load: its URL, what its customers say, and how its conversations start."""

    bot: str
    base_url: str
    script: Sequence[str]
    senders: Iterator[str] | None = None  # members, each used once (None: new senders)
    headers: Mapping[str, str] | None = None

    def run(self, concurrency: int, conversations: int) -> LoadResult:
        chosen = [next(self.senders) for _ in range(conversations + 1)] if self.senders else []
        return asyncio.run(
            load(
                self.bot,
                self.base_url,
                self.script,
                concurrency,
                conversations,
                chosen,
                self.headers,
            )
        )


def alternate(
    ours: Contender, stock: Contender, conversations: int, repeats: int
) -> tuple[list[Summary], list[Summary]]:
    """Both bots at every level, A B then B A, `repeats` times, so the machine's drift (another
    job, thermal state) lands on both sides; the medians over the repeats are reported."""
    mine: dict[int, list[LoadResult]] = {level: [] for level in CONCURRENCY}
    theirs: dict[int, list[LoadResult]] = {level: [] for level in CONCURRENCY}
    for repeat in range(repeats):
        for level in CONCURRENCY:
            order = [(ours, mine), (stock, theirs)]
            for bot, into in order if repeat % 2 == 0 else reversed(order):
                into[level].append(bot.run(level, conversations))
    return (
        [summarize(mine[level]) for level in CONCURRENCY],
        [summarize(theirs[level]) for level in CONCURRENCY],
    )


async def _long_conversations(bot: Contender, turns: int, conversations: int) -> list[float]:
    """Per turn index, the median latency over `conversations` sequential conversations of
    `turns` messages each (the script repeated)."""
    url = f"{bot.base_url}/webhooks/rest/webhook"
    script = list(itertools.islice(itertools.cycle(bot.script), turns))
    timed: list[tuple[int, float]] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        for _ in range(conversations):
            sender = next(bot.senders) if bot.senders else f"bench-{uuid.uuid4().hex}"
            await _conversation(session, url, script, timed, sender, bot.headers or {})
    return [statistics.median(ms for t, ms in timed if t == index) for index in range(turns)]


def long_conversation_rows(
    contenders: Sequence[Contender], turns: int = 50, conversations: int = 5
) -> list[str]:
    """Does a turn cost more as the conversation grows? The same messages early and late."""
    rows = [
        f"| bot | turn 1 p50 ms | turn {turns} p50 ms | first {CYCLE_NOTE} p50 ms "
        f"| last {CYCLE_NOTE} p50 ms | last / first |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for bot in contenders:
        by_turn = asyncio.run(_long_conversations(bot, turns, conversations))
        cycle = len(bot.script)
        first = statistics.median(by_turn[:cycle])
        last = statistics.median(by_turn[-cycle:])
        rows.append(
            f"| {bot.bot} | {by_turn[0]:.0f} | {by_turn[-1]:.0f} | {first:.0f} | {last:.0f} "
            f"| {last / first:.2f}× |"
        )
    return rows


CYCLE_NOTE = "script pass"


def summary_rows(ours: Sequence[Summary], stock: Sequence[Summary]) -> list[str]:
    rows = [
        "| concurrency | bot | p50 ms (min-max) | p95 ms | msg/s (min-max) | errors "
        "| p50 ratio (stock/ours) | throughput ratio (ours/stock) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mine, theirs in zip(ours, stock, strict=True):
        rows.append(_summary_row(theirs, "", ""))
        rows.append(
            _summary_row(
                mine,
                f"{theirs.p50_ms / mine.p50_ms:.2f}×",
                f"{mine.throughput / theirs.throughput:.2f}×",
            )
        )
    return rows


def _summary_row(r: Summary, latency_ratio: str, throughput_ratio: str) -> str:
    return (
        f"| {r.concurrency} | {r.bot} | {r.p50_ms:.0f} ({r.p50_min_ms:.0f}-{r.p50_max_ms:.0f}) "
        f"| {r.p95_ms:.0f} | {r.throughput:.1f} ({r.throughput_min:.1f}-{r.throughput_max:.1f}) "
        f"| {r.errors} | {latency_ratio} | {throughput_ratio} |"
    )


def crm_summary_rows(ours: Sequence[Summary], stock: Sequence[Summary]) -> list[str]:
    """The CRM-backed turn (order status) beside the stock bot's median turn, per level."""
    rows = [
        "| concurrency | carebot order status p50 ms | stock rasa init p50 ms (any turn) "
        "| ratio (stock/ours) |",
        "| --- | --- | --- | --- |",
    ]
    for mine, theirs in zip(ours, stock, strict=True):
        rows.append(
            f"| {mine.concurrency} | {mine.crm_p50_ms:.0f} | {theirs.p50_ms:.0f} "
            f"| {theirs.p50_ms / mine.crm_p50_ms:.2f}× |"
        )
    return rows


def start(service: Service, cwd: Path, log: Path) -> None:
    service.start(cwd, log)
    wait_until_ready(service)
