"""The Prometheus metrics of every process we run (docs/deploy.md lists them).

Each process registers what it measures in prometheus_client's default registry and serves it
on its `/metrics` (bot/health.py). A metric object costs nothing until it is used; the Rasa
server's per-turn cost is one increment and one observation on series looked up once per
channel, about 5 µs, and under 1 µs per saved event (issue 19 measures per-turn cost).

- Rasa server (each replica): customer turns by channel and their latency, from the channel
  receiving the message to the answer, conversation lock included (`install_turn_timer`);
  fallbacks and handoffs, from the new events the tracker store saves (`count_new_event`).
- Care scheduler: whether this process leads, and the outbox by state (`OutboxCollector`,
  read from the CRM when scraped, at most once per `OUTBOX_REFRESH_S`).
- Log consumer: messages and turns written, messages dropped, the queue's depth and the age of
  the oldest event of the last batch written (its lag behind the Rasa servers).
- Action server: each custom action's run time by action (`install_action_timer`), served on
  its own `/metrics` (bot/action_server.py).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

log = logging.getLogger(__name__)

FALLBACK_INTENT = "nlu_fallback"  # as the dashboard counts fallbacks (crm_store/dashboard/bot.py)
TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0)

TURNS = Counter("carebot_turns", "Customer messages the Rasa server handled", ["channel"])
TURN_SECONDS = Histogram(
    "carebot_turn_seconds",
    "From a customer message reaching the Rasa server to its answer (lock wait included)",
    ["channel"],
    buckets=TURN_BUCKETS,
)
FALLBACKS = Counter("carebot_fallbacks", "Customer messages the bot did not understand")
HANDOFFS = Counter("carebot_handoffs", "Conversations paused for a person (handoff)")

SCHEDULER_LEADER = Gauge("carebot_scheduler_leader", "1 while this scheduler process leads")

CONSUMER_MESSAGES = Counter("carebot_consumer_messages", "Messages written and acknowledged")
CONSUMER_TURNS = Counter("carebot_consumer_turns", "Turns written to the CRM")
CONSUMER_RECONCILED = Counter(
    "carebot_consumer_reconciled_turns",
    "Turns written from the tracker store that the event broker had not delivered",
)
CONSUMER_MALFORMED = Counter("carebot_consumer_malformed", "Messages dropped: not Rasa events")
CONSUMER_QUEUE_DEPTH = Gauge(
    "carebot_consumer_queue_depth", "Messages waiting in the queue when last looked at"
)
CONSUMER_LAG_SECONDS = Gauge(
    "carebot_consumer_lag_seconds",
    "Age of the oldest event of the last batch when it was written (0 while idle)",
)


def page() -> tuple[bytes, str]:
    """This process's metrics in Prometheus's text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def channel_label(input_channel: str | None) -> str:
    """A bounded label: the input channel's name, or `other` for anything unexpected."""
    return input_channel if input_channel in KNOWN_CHANNELS else "other"


KNOWN_CHANNELS = frozenset({"rest", "webchat", "socketio", "wechat", "cmdline"})


_TURN_SERIES: dict[str, tuple[Any, Any]] = {}


def _turn_series(input_channel: str | None) -> tuple[Any, Any]:
    """The channel's counter and histogram, looked up once per channel label (a turn then costs
    an increment and an observation, no label lookup)."""
    channel = channel_label(input_channel)
    series = _TURN_SERIES.get(channel)
    if series is None:
        series = _TURN_SERIES[channel] = (TURNS.labels(channel), TURN_SECONDS.labels(channel))
    return series


def count_new_event(data: dict[str, Any]) -> None:
    """A fallback or a handoff among the events the tracker store saves for the first time."""
    kind = data.get("event")
    if kind == "pause":
        HANDOFFS.inc()
    elif kind == "user":
        intent = (data.get("parse_data") or {}).get("intent") or {}
        if intent.get("name") == FALLBACK_INTENT:
            FALLBACKS.inc()


def install_turn_timer() -> None:
    """Times and counts every customer message the Rasa server's agent handles."""
    from rasa.core.agent import Agent

    original = Agent.handle_message
    if getattr(original, "_carebot_timed", False):
        return

    @functools.wraps(original)
    async def handle_message(self: Agent, message: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(self, message)
        finally:
            turns, seconds = _turn_series(getattr(message, "input_channel", None))
            turns.inc()
            seconds.observe(time.perf_counter() - started)

    handle_message._carebot_timed = True  # type: ignore[attr-defined]
    Agent.handle_message = handle_message


ACTION_SECONDS = Histogram(
    "carebot_action_seconds",
    "How long a custom action ran in the action server, by action (errors included)",
    ["action"],
    buckets=TURN_BUCKETS,
)


def install_action_timer() -> None:
    """Times every action rasa-sdk's executor runs; unknown names are labelled `unknown`."""
    from rasa_sdk.executor import ActionExecutor

    original = ActionExecutor.run
    if getattr(original, "_carebot_timed", False):
        return

    @functools.wraps(original)
    async def run(self: ActionExecutor, action_call: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(self, action_call)
        finally:
            name = action_call.get("next_action") if isinstance(action_call, dict) else None
            label = name if name in self.actions else "unknown"
            ACTION_SECONDS.labels(label).observe(time.perf_counter() - started)

    run._carebot_timed = True  # type: ignore[attr-defined]
    ActionExecutor.run = run


OUTBOX_REFRESH_S = 30.0


class OutboxCollector(Collector):
    """`carebot_outbox_messages{state}`: the CRM's outbox rows by state, read when scraped
    (one grouped query, at most once per `refresh_s`; the last answer in between)."""

    def __init__(
        self, count: Callable[[], dict[str, int]], refresh_s: float = OUTBOX_REFRESH_S
    ) -> None:
        self.count = count
        self.refresh_s = refresh_s
        self._cached: dict[str, int] | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "carebot_outbox_messages", "Care messages in the outbox by state", labels=["state"]
        )
        for state, rows in sorted(self._counts().items()):
            family.add_metric([state], rows)
        yield family

    def _counts(self) -> dict[str, int]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._read_at >= self.refresh_s:
                try:
                    self._cached = self.count()
                except Exception as error:  # the database is down: say so in the readiness
                    log.warning("outbox metrics: the CRM could not be read (%s)", error)
                    return self._cached or {}
                self._read_at = time.monotonic()
            return self._cached


def register_outbox(count: Callable[[], dict[str, int]]) -> OutboxCollector:
    collector = OutboxCollector(count)
    REGISTRY.register(collector)
    return collector
