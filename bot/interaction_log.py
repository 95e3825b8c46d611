"""Every customer and bot turn, from Rasa's event stream into the CRM's interactions.

Rasa's event broker (`event_broker` in endpoints.yml) sees every new tracker event in the Rasa
server process. `publish()` runs on Rasa's event loop, so it only turns the event into an
`InteractionRow` and queues it; one writer thread stores the queue in batches, one transaction each,
and keeps retrying (with backoff) while the database is down. Each turn carries an idempotency key
(sender, event type, Rasa timestamp), so a batch retried after a commit that did succeed, or an
event published twice, is stored once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from asyncio import AbstractEventLoop
from collections import OrderedDict, deque
from datetime import datetime, timezone
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from crm_store.clock import fixed
from crm_store.db import database_url, make_engine, session_scope
from crm_store.errors import NotFound
from crm_store.interactions import (
    TurnToLog,
    conversation_id_for,
    get_conversation,
    log_interaction,
    log_turns,
)

logger = logging.getLogger(__name__)

MAX_QUEUED = 10_000
BATCH_SIZE = 200
FIRST_RETRY_S = 0.5
MAX_RETRY_S = 30.0
CLOSE_TIMEOUT_S = 10.0
ABANDON_JOIN_S = 2.0
KNOWN_SENDERS = 50_000  # senders whose channel is remembered (least recently seen go first)
DROP_LOG_EVERY = 1_000
INTENT_LENGTH = 64  # interactions.intent
DEFAULT_CHANNEL = "web"


InteractionRow = TurnToLog  # one interaction row to write (crm_store.interactions)


def crm_channel(input_channel: str | None) -> str:
    """The CRM channel of a Rasa input channel: WeChat, or the web for everything else."""
    return "wechat" if input_channel == "wechat" else "web"


def event_key(event: dict[str, Any]) -> str | None:
    """`<conversation id>:<event type>:<repr of the Rasa timestamp>`, at most 96 characters."""
    timestamp = event.get("timestamp")
    if not isinstance(timestamp, (int, float)) or isinstance(timestamp, bool):
        return None
    conversation_id = conversation_id_for(str(event["sender_id"]))
    return f"{conversation_id}:{event['event']}:{float(timestamp)!r}"


def customer_turn(event: dict[str, Any], handled_by: str = "bot") -> InteractionRow:
    """A customer turn; `handled_by` is "agent" while a person has the conversation."""
    intent = (event.get("parse_data") or {}).get("intent") or {}
    return InteractionRow(
        conversation_id=conversation_id_for(str(event["sender_id"])),
        speaker="customer",
        channel=crm_channel(event.get("input_channel")),
        text=event.get("text"),
        intent=_intent_name(intent.get("name")),
        confidence=_confidence(intent.get("confidence")),
        handled_by=handled_by,
        agent_id=None,
        occurred_at=_occurred_at(event),
        event_key=event_key(event),
    )


def bot_turn(event: dict[str, Any], channel: str | None) -> InteractionRow:
    """A bot turn, or an agent's reply when its metadata says `handled_by: agent`."""
    metadata = event.get("metadata") or {}
    handled_by = "agent" if metadata.get("handled_by") == "agent" else "bot"
    agent_id = _agent_id(metadata.get("agent_id")) if handled_by == "agent" else None
    return InteractionRow(
        conversation_id=conversation_id_for(str(event["sender_id"])),
        speaker="agent" if agent_id is not None else "bot",
        channel=channel,
        text=event.get("text") or describe_payload(event.get("data") or {}),
        intent=None,
        confidence=None,
        handled_by=handled_by,
        agent_id=agent_id,
        occurred_at=_occurred_at(event),
        event_key=event_key(event),
    )


def describe_payload(data: dict[str, Any]) -> str | None:
    """A bot message without text, described for the transcript: `[buttons: A | B]` etc."""
    parts = [
        _describe_choices("buttons", data.get("buttons")),
        _describe_choices("quick replies", data.get("quick_replies")),
        f"[image: {data['image']}]" if data.get("image") else None,
        _describe_attachment(data),
        f"[{len(data['elements'])} elements]" if data.get("elements") else None,
        _describe_custom(data.get("custom")),
    ]
    return " ".join(part for part in parts if part) or None


def _describe_choices(kind: str, choices: Any) -> str | None:
    if not choices:
        return None
    return f"[{kind}: {' | '.join(_choice_title(choice) for choice in choices)}]"


def _choice_title(choice: Any) -> str:
    if isinstance(choice, dict):
        return str(choice.get("title") or choice.get("payload"))
    return str(choice)


def _describe_attachment(data: dict[str, Any]) -> str | None:
    attachment = data.get("attachment")
    if not attachment or attachment == data.get("image"):
        return None
    return f"[attachment: {json.dumps(attachment, ensure_ascii=False, default=str)}]"


def _describe_custom(custom: Any) -> str | None:
    if not custom:
        return None
    return f"[custom: {json.dumps(custom, ensure_ascii=False, sort_keys=True, default=str)}]"


def _intent_name(name: Any) -> str | None:
    return str(name)[:INTENT_LENGTH] if name else None


def _confidence(value: Any) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return min(max(float(value), 0.0), 1.0)  # float noise must not make a valid turn invalid


def _agent_id(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _occurred_at(event: dict[str, Any]) -> datetime:
    timestamp = event.get("timestamp")
    if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
        return datetime.fromtimestamp(timestamp, timezone.utc)
    return datetime.now(timezone.utc)


class SenderChannels:
    """The CRM channel of each sender's last customer turn, for the bot turns that follow."""

    def __init__(self, limit: int = KNOWN_SENDERS) -> None:
        self._channels: OrderedDict[str, str] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def remember(self, sender_id: str, channel: str) -> None:
        with self._lock:
            self._channels[sender_id] = channel
            self._channels.move_to_end(sender_id)
            if len(self._channels) > self._limit:
                self._channels.popitem(last=False)

    def get(self, sender_id: str) -> str | None:
        with self._lock:
            return self._channels.get(sender_id)


class PausedSenders:
    """Conversations handed to a person (Rasa's pause event) in this process, until resumed.

    After a restart a conversation paused before it counts as the bot's again until its next
    pause; the handoff record in the CRM stays the authority on who served it.
    """

    def __init__(self) -> None:
        self._paused: set[str] = set()
        self._lock = threading.Lock()

    def set(self, sender_id: str, paused: bool) -> None:
        with self._lock:
            if paused:
                self._paused.add(sender_id)
            else:
                self._paused.discard(sender_id)

    def get(self, sender_id: str) -> bool:
        with self._lock:
            return sender_id in self._paused


class TurnReader:
    """Rasa's tracker events, in the order one conversation produced them, as the turns to log.

    It remembers what later events need: each sender's channel (a bot event does not say it)
    and whether a person has the conversation (between Rasa's pause and resume events).
    """

    def __init__(self) -> None:
        self._channels = SenderChannels()
        self._paused = PausedSenders()

    def read(self, event: dict[str, Any]) -> InteractionRow | None:
        sender_id = str(event.get("sender_id"))
        kind = event.get("event")
        if kind in ("pause", "resume"):  # a handoff to a person starts or ends
            self._paused.set(sender_id, kind == "pause")
            return None
        if kind == "user":
            handled_by = "agent" if self._paused.get(sender_id) else "bot"
            turn = customer_turn(event, handled_by)
            self._channels.remember(sender_id, turn.channel or DEFAULT_CHANNEL)
            return turn
        if kind == "bot":
            return bot_turn(event, self._channels.get(sender_id))
        return None


class TurnQueue:
    """A bounded FIFO between Rasa's event loop (`put`) and the writer thread (`take`, `done`).

    Turns taken but not yet stored count against the bound; when it is reached the oldest queued
    turn is dropped, so a long outage costs the oldest turns and never the server's memory.
    """

    def __init__(self, limit: int = MAX_QUEUED) -> None:
        self._items: deque[InteractionRow] = deque()
        self._limit = limit
        self._in_flight = 0
        self._closed = False
        self._changed = threading.Condition()
        self.dropped = 0

    def put(self, turn: InteractionRow) -> bool:
        """Queues `turn`; False if the oldest queued turn was dropped to make room."""
        with self._changed:
            full = len(self._items) + self._in_flight >= self._limit and bool(self._items)
            if full:
                self._items.popleft()
                self.dropped += 1
            self._items.append(turn)
            self._changed.notify_all()
            return not full

    def take(self, limit: int) -> list[InteractionRow]:
        """Up to `limit` turns, waiting for the first; an empty list once closed and drained."""
        with self._changed:
            while not self._items and not self._closed:
                self._changed.wait()
            batch = [self._items.popleft() for _ in range(min(limit, len(self._items)))]
            self._in_flight += len(batch)
            return batch

    def done(self, count: int) -> None:
        with self._changed:
            self._in_flight -= count
            self._changed.notify_all()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self._items and not self._in_flight, timeout)

    def __len__(self) -> int:
        with self._changed:
            return len(self._items) + self._in_flight


def is_transient(error: BaseException) -> bool:
    """True for a database that is down or busy (retry); False for a turn it refuses (drop)."""
    if isinstance(error, (IntegrityError, DataError)):
        return False
    return isinstance(error, (DBAPIError, PoolTimeout, OSError))


class CrmInteractionLog(EventBroker):
    """Rasa event broker that logs customer and bot turns to the CRM store; never blocks Rasa."""

    def __init__(
        self,
        url: str,
        *,
        max_queued: int = MAX_QUEUED,
        first_retry_s: float = FIRST_RETRY_S,
        max_retry_s: float = MAX_RETRY_S,
    ) -> None:
        make_url(url)  # a malformed URL fails Rasa's start-up, not every write
        self.url = url
        self._queue = TurnQueue(max_queued)
        self._reader = TurnReader()
        self._retry_s = (first_retry_s, max_retry_s)
        self._engine: Engine | None = None
        self._down_since: float | None = None
        self._closed = False
        self._abandon = threading.Event()
        self._writer = threading.Thread(target=self._run, name="crm-interaction-log", daemon=True)
        self._writer.start()

    @classmethod
    async def from_endpoint_config(
        cls,
        broker_config: EndpointConfig,
        event_loop: AbstractEventLoop | None = None,
    ) -> CrmInteractionLog:
        """Built by Rasa from endpoints.yml: `url` is the CRM database URL."""
        max_queued = int(broker_config.kwargs.get("max_queued", MAX_QUEUED))
        return cls(broker_config.url or database_url(), max_queued=max_queued)

    def publish(self, event: dict[str, Any]) -> None:
        """Queues a user or bot event; never blocks and never raises."""
        try:
            turn = self._reader.read(event)
            if turn is not None:
                self._enqueue(turn)
        except Exception:  # a malformed event must not break Rasa's turn
            logger.exception("could not queue an event for the CRM interaction log")

    def _enqueue(self, turn: InteractionRow) -> None:
        if self._closed:
            logger.error("interaction log closed: a turn of %s is not logged", turn.conversation_id)
        elif not self._queue.put(turn) and self._queue.dropped % DROP_LOG_EVERY == 1:
            logger.error(
                "interaction log queue full (%d turns): dropping the oldest, %d so far",
                len(self._queue),
                self._queue.dropped,
            )

    def wait_idle(self, timeout: float) -> bool:
        """Waits until every queued turn is stored; False if that took longer than `timeout`."""
        return self._queue.wait_idle(timeout)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def close(self) -> None:
        """Rasa's shutdown hook: flush (at most CLOSE_TIMEOUT_S), without blocking the loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.stop, CLOSE_TIMEOUT_S)

    def stop(self, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Flushes the queue and stops the writer; False (and an error line) if turns are lost."""
        self._closed = True
        self._queue.close()
        self._writer.join(timeout)
        if self._writer.is_alive():
            self._abandon.set()  # stop retrying a database that is still down
            self._writer.join(ABANDON_JOIN_S)
        lost = len(self._queue)
        if lost:
            logger.error("interaction log stopped with %d turns not written to the CRM", lost)
        return lost == 0

    def _run(self) -> None:
        try:
            while batch := self._queue.take(BATCH_SIZE):
                if not self._store_until_done(list(batch)):
                    return  # abandoned: the turns stay counted in the queue, stop() reports them
                self._queue.done(len(batch))
        finally:
            if self._engine is not None:
                self._engine.dispose()

    def _store_until_done(self, pending: list[InteractionRow]) -> bool:
        """Stores `pending`, retrying with backoff while the database is down.

        False only when stop() gave up waiting for the database.
        """
        delay, max_delay = self._retry_s
        while not self._abandon.is_set():
            try:
                self._store(pending)
            except Exception as error:
                if not is_transient(error):  # a bug of ours: the writer must live on
                    logger.exception("dropped %d turns that could not be written", len(pending))
                    return True
                self._went_down(error)
                self._abandon.wait(delay)
                delay = min(delay * 2, max_delay)
                continue
            self._came_back()
            return True
        return False

    def _store(self, pending: list[InteractionRow]) -> None:
        if self._engine is None:
            self._engine = make_engine(self.url)
        write_turns(self._engine, pending)
        pending.clear()

    def _went_down(self, error: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.error(
                "CRM database unavailable, keeping %d turns queued and retrying: %s",
                len(self._queue),
                _first_line(error),
            )

    def _came_back(self) -> None:
        if self._down_since is not None:
            logger.info(
                "CRM database available again after %.0f s; writing the queued turns",
                time.monotonic() - self._down_since,
            )
            self._down_since = None


def write_turns(engine: Engine, turns: list[InteractionRow]) -> None:
    """Stores `turns` in one transaction (`log_turns`: a few statements for the whole batch);
    if the database refuses it (not a transient error: a turn it rejects, or a concurrent
    writer that stored one of them first), one transaction per turn, dropping (and logging)
    only the refused ones. A transient error (the database down) is raised with nothing
    dropped. Stored turns are idempotent by their event key, so writing a batch again stores
    nothing twice."""
    try:
        with session_scope(engine) as session:
            log_turns(session, turns, default_channel=DEFAULT_CHANNEL)
    except Exception as error:
        if is_transient(error):
            raise
        for turn in turns:
            _write_refusing_one(engine, turn)


def _write_refusing_one(engine: Engine, turn: InteractionRow) -> None:
    try:
        with session_scope(engine) as session:
            _log_turn(session, turn)
    except Exception as error:
        if is_transient(error):
            raise
        logger.exception("the CRM refused a turn of %s: dropped", turn.conversation_id)


def _log_turn(session: Session, turn: InteractionRow) -> None:
    log_interaction(
        session,
        conversation_id=turn.conversation_id,
        channel=turn.channel or _conversation_channel(session, turn.conversation_id),
        speaker=turn.speaker,
        text=turn.text,
        intent=turn.intent,
        confidence=turn.confidence,
        handled_by=turn.handled_by,
        agent_id=turn.agent_id,
        event_key=turn.event_key,
        clock=fixed(turn.occurred_at),
    )


def _conversation_channel(session: Session, conversation_id: str) -> str:
    """For a bot turn whose sender this process has not heard (a restart, a proactive message)."""
    try:
        return get_conversation(session, conversation_id=conversation_id).channel
    except NotFound:
        return DEFAULT_CHANNEL


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__)[:300]
