"""The interaction log reconciled from Rasa's tracker store, its source of truth (issue 18).

A Rasa replica stores a turn's events in the tracker store before it answers, but publishes
them to RabbitMQ afterwards, from its event loop; under load that lags by seconds, and a replica
that is SIGKILLed takes the backlog with it. So the log consumer (bot/log_consumer.py) also
reads the tracker store's `events` table itself, every `every_s`: the rows past a watermark
(by id), each row's JSON with its sender id being the very dict Rasa publishes, read by the same
`TurnReader` and written by the same `write_turns` as a broker message. The event key of each
turn makes a turn the broker delivered too a no-op (and the keys already stored are skipped with
one query, not written again).

Ids are handed out when a replica inserts, but transactions commit in any order, so a row with
a lower id can appear after a higher one was read. The watermark therefore only advances to the
highest id a pass saw at least `margin_s` ago (on this process's clock, no replica's), and every
pass reads everything above it again: a transaction that commits within `margin_s` of its insert
is read. The watermark is kept in the CRM (`reconcile_watermarks`, one row per tracker database)
so a restart does not read the whole tracker store again; it only ever moves forward.

Who has the conversation (Rasa's pause and resume) is taken from the tracker store too: each
pass starts a fresh reader, told for every sender in a page the last pause or resume stored
before that page, so a turn reconciled late is attributed as it was when it happened, whatever
the broker delivered in between. A bot turn whose customer turn is older than the page takes the
conversation's channel from the CRM (`write_turns`).
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine, make_url

from bot.interaction_log import InteractionRow, TurnReader, write_turns
from crm_store.db import make_engine, session_scope
from crm_store.interactions import existing_event_keys
from crm_store.watermarks import SOURCE_LENGTH, get_watermark, set_watermark

logger = logging.getLogger(__name__)

EVERY_S = 10.0
MARGIN_S = 60.0
PAGE = 1000
Row = tuple[int, str, dict[str, Any]]  # a tracker event's id, sender id and Rasa event dict
TURN_EVENTS = ("user", "bot", "pause", "resume")  # what TurnReader reads; the rest is skipped

PAGE_QUERY = text(
    "SELECT id, sender_id, data FROM events WHERE id > :after AND type_name IN :kinds "
    "ORDER BY id LIMIT :page"
).bindparams(bindparam("kinds", expanding=True))
HANDOFF_QUERY = text(
    "SELECT events.sender_id, events.type_name FROM events JOIN ("
    " SELECT sender_id, MAX(id) AS id FROM events"
    " WHERE type_name IN ('pause', 'resume') AND id <= :upto AND sender_id IN :senders"
    " GROUP BY sender_id) AS last ON events.id = last.id"
).bindparams(bindparam("senders", expanding=True))


@dataclass(frozen=True)
class ReconcileConfig:
    tracker_url: str
    database_url: str
    every_s: float = EVERY_S  # 0: no reconciliation
    margin_s: float = MARGIN_S
    page: int = PAGE


@dataclass(frozen=True)
class PassResult:
    events: int  # tracker rows read (user, bot, pause, resume)
    turns: int  # turns they make
    written: int  # turns the interaction log did not have yet
    watermark: int  # after the pass


def tracker_source(tracker_url: str) -> str:
    """The watermark's name for a tracker database: its URL without the password."""
    return make_url(tracker_url).render_as_string(hide_password=True)[:SOURCE_LENGTH]


class Reconciler:
    """One pass at a time (`reconcile_once`), from a worker thread of the log consumer."""

    def __init__(
        self, config: ReconcileConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self.source = tracker_source(config.tracker_url)
        self._clock = clock
        self._seen: deque[tuple[float, int]] = deque()  # (a pass's start, the highest id it saw)
        self._tracker: Engine | None = None
        self._crm: Engine | None = None

    def reconcile_once(self) -> PassResult:
        """Writes every turn above the watermark the interaction log lacks; moves the watermark
        past what was seen at least `margin_s` ago. Raises if a database is out of reach (the
        watermark stays)."""
        crm = self._crm_engine()
        with session_scope(crm) as session:
            watermark = get_watermark(session, source=self.source)
        started = self._clock()
        events = turns = written = 0
        highest = watermark
        for seeds, rows in self._pages(watermark):
            page_turns = self._read([*seeds, *rows])
            fresh = self._not_logged(crm, page_turns)
            if fresh:
                write_turns(crm, fresh)
            events, turns, written = (
                events + len(rows),
                turns + len(page_turns),
                written + len(fresh),
            )
            highest = max(highest, rows[-1][0])
        self._seen.append((started, highest))
        watermark = self._advance(crm, watermark, started)
        if written:
            logger.info("reconciled %d turns the event broker had not delivered", written)
        return PassResult(events, turns, written, watermark)

    def close(self) -> None:
        for engine in (self._tracker, self._crm):
            if engine is not None:
                engine.dispose()
        self._tracker = self._crm = None

    def _crm_engine(self) -> Engine:
        if self._crm is None:
            self._crm = make_engine(self.config.database_url)
        return self._crm

    def _tracker_engine(self) -> Engine:
        if self._tracker is None:
            self._tracker = create_engine(self.config.tracker_url, pool_pre_ping=True)
        return self._tracker

    def _pages(self, watermark: int) -> Iterator[tuple[list[Row], list[Row]]]:
        """The tracker's turn events above the watermark in id order, a page at a time, each
        preceded (for its reader) by its senders' last handoff event before it."""
        after = watermark
        with self._tracker_engine().connect() as connection:
            if not inspect(connection).has_table("events"):  # no Rasa server has started yet
                return
            while True:
                found = connection.execute(
                    PAGE_QUERY,
                    {"after": after, "kinds": list(TURN_EVENTS), "page": self.config.page},
                ).all()
                if not found:
                    return
                rows = [(int(row[0]), str(row[1]), _event(row[1], row[2])) for row in found]
                yield _handoffs_before(connection, after, rows), rows
                after = rows[-1][0]
                if len(found) < self.config.page:
                    return

    @staticmethod
    def _read(rows: list[Row]) -> list[InteractionRow]:
        reader = TurnReader()  # a fresh one: nothing the broker delivered meanwhile counts
        return [turn for _, _, event in rows if event and (turn := reader.read(event))]

    @staticmethod
    def _not_logged(crm: Engine, turns: list[InteractionRow]) -> list[InteractionRow]:
        keys = [turn.event_key for turn in turns if turn.event_key is not None]
        with session_scope(crm) as session:
            stored = existing_event_keys(session, event_keys=keys)
        return [turn for turn in turns if turn.event_key is None or turn.event_key not in stored]

    def _advance(self, crm: Engine, watermark: int, started: float) -> int:
        """The highest id seen by a pass that started `margin_s` before this one, stored."""
        target = watermark
        while self._seen and self._seen[0][0] <= started - self.config.margin_s:
            target = max(target, self._seen.popleft()[1])
        if target <= watermark:
            return watermark
        with session_scope(crm) as session:
            return set_watermark(session, source=self.source, event_id=target)


def _event(sender_id: Any, data: Any) -> dict[str, Any]:
    """The dict Rasa's broker publishes for a stored event: its JSON with the sender id; empty
    for a row that is not a JSON object."""
    try:
        event = json.loads(data)
    except (TypeError, ValueError):
        return {}
    return {"sender_id": str(sender_id), **event} if isinstance(event, dict) else {}


def _handoffs_before(connection: Connection, upto: int, rows: list[Row]) -> list[Row]:
    """For each sender of `rows`, its last pause or resume with an id up to `upto`, as events."""
    senders = sorted({sender for _, sender, _ in rows})
    if upto <= 0 or not senders:
        return []
    found = connection.execute(HANDOFF_QUERY, {"upto": upto, "senders": senders})
    return [(0, str(sender), {"sender_id": str(sender), "event": kind}) for sender, kind in found]


def reconcile_config(
    tracker_url: str, database_url: str, every_s: float, margin_s: float
) -> ReconcileConfig | None:
    """Reconciliation for a tracker store in a SQL database; None when off (`every_s` 0)."""
    if not tracker_url or every_s <= 0:
        return None
    return ReconcileConfig(tracker_url, database_url, every_s=every_s, margin_s=margin_s)
