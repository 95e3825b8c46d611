"""Bounded load: many REST and web chat conversations at once through the balancer, each a few
turns in order, every turn timed and its replies kept for the checks.

A REST turn that meets a connection error or a 5xx is sent once more, as a brand's back end
would retry it (docs/deploy.md); the count of those retries is part of the result. A web chat
turn is said once on the member's socket, as a person types it; the turn is over when as many
bot messages as that turn brings (`replies_per_turn`, one member alone) have come, and its
latency is when the last one came.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

from tests.cluster.cluster import REST_SECRET
from tests.integration.webchat_client import WebChatCustomer

WEBHOOK = "/webhooks/rest/webhook"
TEXTS = ("你好", "我的积分还有多少", "谢谢")
TURN_TIMEOUT_S = 90.0  # above Rasa's conversation lock lifetime (a killed replica's lock)
RETRY_PAUSE_S = 0.5
WEB_QUIET_S = 3.0  # alone, a turn's replies are over when none came for this long
WEB_OPEN_S = 60.0  # each step of opening a socket (connect, session, history) on a loaded cluster
WEB_REQUEST_S = 20.0  # engine.io's handshake, as long as a browser's socket.io waits


def quantile(values: list[float], share: float) -> float:
    """The `share` quantile (0.95: p95) of `values`."""
    ordered = sorted(values)
    if len(ordered) < 2:
        return ordered[0] if ordered else float("nan")
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(share * 100) - 1]


@dataclass
class Turn:
    sender: str  # a web chat turn: the session its socket was confirmed in
    text: str
    status: int  # 0: no HTTP answer; a web chat turn is 200 once all its replies came
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
    opened_s: list[float] = field(default_factory=list)  # how long each web chat socket took

    @property
    def turns(self) -> list[Turn]:
        return [turn for turns in self.conversations.values() for turn in turns]

    @property
    def throughput(self) -> float:
        return len([turn for turn in self.turns if turn.status == 200]) / self.elapsed_s

    def percentile(self, share: float) -> float:
        return quantile([turn.latency_s for turn in self.turns if turn.status == 200], share)

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


@dataclass(frozen=True)
class WebChatter:
    """A member on the website: their user id (their conversation), login token, and their
    widget's transports (None: long polling, then the websocket upgrade, as our widget's
    socket.io-client does; ["websocket"]: rasa-webchat's default)."""

    user: str
    token: str
    transports: list[str] | None = None


async def replies_per_turn(
    url: str, chatter: WebChatter, texts: tuple[str, ...] = TEXTS
) -> list[int]:
    """How many bot messages each turn brings, from one member's web chat with nothing else
    running (until none came for WEB_QUIET_S). Under load a member waits for that many: gaps
    between one turn's messages grow past any quiet period there."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        customer = WebChatCustomer(
            url, chatter.token, transports=chatter.transports, http_session=http
        )
        await customer.open()
        counts = []
        for text in texts:
            await customer.say(text)
            counts.append(len(await customer.messages_until_quiet(WEB_QUIET_S, TURN_TIMEOUT_S)))
        await customer.close()
    return counts


async def _turn_replies(
    customer: WebChatCustomer, count: int, sent: float
) -> tuple[list[dict[str, Any]], float]:
    """The turn's `count` bot messages and how long after `sent` the last one came."""
    replies = [
        await customer.next_message(sent + TURN_TIMEOUT_S - time.monotonic()) for _ in range(count)
    ]
    return replies, time.monotonic() - sent


async def _web_conversation(
    url: str,
    chatter: WebChatter,
    texts: tuple[str, ...],
    counts: list[int],
    result: LoadResult,
    progress: Progress,
) -> None:
    turns = result.conversations[chatter.user]
    # its own cookies, as a browser has: the balancer pins long polling by cookie
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        customer = WebChatCustomer(
            url,
            chatter.token,
            transports=chatter.transports,
            http_session=http,
            request_timeout=WEB_REQUEST_S,
        )
        try:
            started = time.monotonic()
            await customer.open(wait_s=WEB_OPEN_S)
            result.opened_s.append(time.monotonic() - started)
            for text, count in zip(texts, counts, strict=True):
                sent = time.monotonic()
                await customer.say(text)
                replies, latency = await _turn_replies(customer, count, sent)
                turns.append(Turn(customer.session_id or "", text, 200, latency, replies, 1))
                progress.add()
            await asyncio.sleep(WEB_QUIET_S)  # a message more than the turns bring comes by now
            if customer.errors or not customer.received.empty():
                extra = customer.received.qsize()
                result.failures.append(f"web {chatter.user}: {customer.errors}, {extra} more")
        except (socketio.exceptions.SocketIOError, asyncio.TimeoutError) as error:
            result.failures.append(f"web {chatter.user} after {len(turns)} turns: {error!r}")
        finally:
            await customer.close()


async def run_web_load(
    base_url: str,
    chatters: list[WebChatter],
    counts: list[int],
    texts: tuple[str, ...] = TEXTS,
    *,
    progress: Progress | None = None,
    limit_s: float = 300.0,
) -> LoadResult:
    """Every member's web chat at once, each on a socket of its own through the balancer,
    each turn waiting for its `counts` replies; the result's conversations are by user id.
    Bounded like `run_load`."""
    progress = progress or Progress()
    result = LoadResult({chatter.user: [] for chatter in chatters}, 0.0)
    started = time.monotonic()
    conversations = [
        _web_conversation(base_url, chatter, texts, counts, result, progress)
        for chatter in chatters
    ]
    await asyncio.wait_for(asyncio.gather(*conversations), limit_s)
    result.ended_at = time.monotonic()
    result.elapsed_s = result.ended_at - started
    return result
