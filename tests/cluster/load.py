"""Bounded load: many REST conversations at once through the balancer, each a few turns in
order, every turn timed and its replies kept for the checks.

A turn that meets a connection error or a 5xx is sent once more, as a brand's back end would
retry it (docs/deploy.md); the count of those retries is part of the result.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.cluster.cluster import REST_SECRET

WEBHOOK = "/webhooks/rest/webhook"
TEXTS = ("你好", "我的积分还有多少", "谢谢")
TURN_TIMEOUT_S = 90.0  # above Rasa's conversation lock lifetime (a killed replica's lock)
RETRY_PAUSE_S = 0.5


@dataclass
class Turn:
    sender: str
    text: str
    status: int  # 0: no HTTP answer
    latency_s: float
    replies: list[dict[str, Any]]
    attempts: int


@dataclass
class LoadResult:
    conversations: dict[str, list[Turn]]
    elapsed_s: float
    ended_at: float = 0.0  # time.monotonic() when the last turn was answered
    retried: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def turns(self) -> list[Turn]:
        return [turn for turns in self.conversations.values() for turn in turns]

    @property
    def throughput(self) -> float:
        return len([turn for turn in self.turns if turn.status == 200]) / self.elapsed_s

    def percentile(self, share: float) -> float:
        latencies = sorted(turn.latency_s for turn in self.turns if turn.status == 200)
        if len(latencies) < 2:
            return latencies[0] if latencies else float("nan")
        return statistics.quantiles(latencies, n=100, method="inclusive")[round(share * 100) - 1]

    def summary(self) -> str:
        return (
            f"{len(self.conversations)} conversations, {len(self.turns)} turns in "
            f"{self.elapsed_s:.1f} s: {self.throughput:.1f} turns/s, p50 "
            f"{self.percentile(0.5) * 1000:.0f} ms, p95 {self.percentile(0.95) * 1000:.0f} ms, "
            f"{self.retried} retried, {len(self.failures)} failed"
        )


class Progress:
    """Counts answered turns; `reached(n)` is set once n have been answered."""

    def __init__(self) -> None:
        self.done = 0
        self._waiters: list[tuple[int, asyncio.Event]] = []

    def add(self) -> None:
        self.done += 1
        for count, event in self._waiters:
            if self.done >= count:
                event.set()

    def reached(self, count: int) -> asyncio.Event:
        event = asyncio.Event()
        if self.done >= count:
            event.set()
        self._waiters.append((count, event))
        return event


async def send(
    session: aiohttp.ClientSession, url: str, sender: str, text: str
) -> tuple[int, list[dict[str, Any]]]:
    try:
        async with session.post(
            url,
            json={"sender": sender, "message": text},
            headers={"Authorization": f"Bearer {REST_SECRET}"},
            timeout=aiohttp.ClientTimeout(total=TURN_TIMEOUT_S),
        ) as response:
            body = await response.json(content_type=None) if response.status == 200 else []
            return response.status, list(body or [])
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
        return 0, []


async def _conversation(
    session: aiohttp.ClientSession,
    url: str,
    sender: str,
    texts: tuple[str, ...],
    result: LoadResult,
    progress: Progress,
) -> None:
    turns = result.conversations[sender]
    for text in texts:
        started = time.monotonic()
        status, replies = await send(session, url, sender, text)
        attempts = 1
        if status == 0 or status >= 500:
            result.retried += 1
            await asyncio.sleep(RETRY_PAUSE_S)
            status, replies = await send(session, url, sender, text)
            attempts = 2
        turns.append(Turn(sender, text, status, time.monotonic() - started, replies, attempts))
        progress.add()
        if status != 200:
            result.failures.append(f"{sender} {text!r}: HTTP {status}")
            return  # the back end gives up on this conversation


async def run_load(
    base_url: str,
    senders: list[str],
    texts: tuple[str, ...] = TEXTS,
    *,
    progress: Progress | None = None,
    during: Callable[[Progress], Any] | None = None,
    limit_s: float = 300.0,
) -> LoadResult:
    """Every sender's conversation at once; `during(progress)` runs beside them (a fault that
    waits for its moment). Bounded: raises if the load is not over after `limit_s`."""
    progress = progress or Progress()
    result = LoadResult({sender: [] for sender in senders}, 0.0)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        conversations = [
            _conversation(session, base_url + WEBHOOK, sender, texts, result, progress)
            for sender in senders
        ]
        side = [during(progress)] if during else []
        await asyncio.wait_for(asyncio.gather(*conversations, *side), limit_s)
        result.ended_at = time.monotonic()
        result.elapsed_s = result.ended_at - started
    return result
