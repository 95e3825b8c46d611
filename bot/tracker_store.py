"""Rasa's SQL tracker store without the second read per turn.

With an event broker configured, `TrackerStore.save` first retrieves the stored tracker again
(every event since the session start, JSON-decoded and replayed through the domain) only to
find which events are new, then `SQLTrackerStore.save` counts the stored events to find them a
second time. Here the count alone decides, in the same session: the new events are published to
the broker (our turn log) and stored, as Rasa does, with one query less per turn.

Erasure (`carebot forget`, docs/personal-data.md): Rasa's SQL store only ever appends, so
`PUT /conversations/{id}/tracker/events` with an empty list, which Rasa documents as replacing
the tracker, would change nothing. Here an empty tracker replaces the stored one, which erases
the conversation. The request runs under Rasa's conversation lock (in memory, or Redis), so a
running server erases between two turns, never under one. With the server stopped,
`erase_trackers` deletes the rows directly.

Kept trackers (docs/benchmarks.md, the per-turn profile): Rasa rebuilds the tracker for every
turn, reading each event since the session start, decoding its JSON and replaying it through
the domain, then counts the stored events again to save the turn. Here the tracker a turn
saved is kept (the most recently used conversations, `kept_conversations`), and the next turn
gets it back after one indexed query says nothing was stored for the conversation since (its
highest row id), so a conversation that moved to another replica and back, or was erased, is
read again. A tracker changed without being saved (a turn that failed half way) has more
events than were stored and is read again too. When a turn started a new session, the kept
tracker holds only the new session's events, as Rasa's own store would read them.
"""

from __future__ import annotations

import itertools
import json
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.event import listen
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from bot.metrics import count_new_event

KEPT_CONVERSATIONS = 128


@dataclass
class _Kept:
    """A tracker as it was last stored: how many of its events are stored, the conversation's
    highest row id then, and the domain its slots came from (a new model reads it again)."""

    tracker: DialogueStateTracker
    stored: int
    last_id: int
    domain: Domain | None

    def still_stored(self, last_id: int | None, domain: Domain | None) -> bool:
        return (
            last_id == self.last_id
            and len(self.tracker.events) == self.stored
            and domain is self.domain
        )


class CareSQLTrackerStore(SQLTrackerStore):
    def __init__(
        self, *args: Any, kept_conversations: int = KEPT_CONVERSATIONS, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._kept: OrderedDict[str, _Kept] = OrderedDict()
        self._keep_at_most = kept_conversations
        engine: Engine = self.engine  # type: ignore[has-type]
        if engine.dialect.name == "sqlite" and engine.url.database:
            self._keep_sqlite_connections()

    def _keep_sqlite_connections(self) -> None:
        """SQLAlchemy 1.4 opens and closes a new SQLite connection for every session of a file
        database (NullPool): a turn paid for two connects. Rasa's server calls the store from
        its event loop thread only, so connections are kept in a pool instead (with WAL and no
        fsync per commit: `_write_ahead_log`)."""
        unpooled: Engine = self.engine  # type: ignore[has-type]
        unpooled.dispose()
        pooled = create_engine(
            unpooled.url, poolclass=QueuePool, connect_args={"check_same_thread": False}
        )
        listen(pooled, "connect", _write_ahead_log)
        self.engine, self.sessionmaker = pooled, sessionmaker(bind=pooled)

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The conversation's current session: the kept tracker while nothing was stored for
        it since, else read from the database as Rasa does."""
        with self.session_scope() as session:
            kept = self._kept.get(sender_id)
            if kept is not None and kept.still_stored(
                self._last_id(session, sender_id), self.domain
            ):
                self._kept.move_to_end(sender_id)
                return kept.tracker
            self._kept.pop(sender_id, None)
            rows = self._event_query(session, sender_id, fetch_events_from_all_sessions=False).all()
            if not self.domain or not rows:
                return None
            tracker = DialogueStateTracker.from_dict(
                sender_id, [json.loads(row.data) for row in rows], self.domain.slots
            )
            self._keep(tracker, last_id=max(int(row.id) for row in rows))
            return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        if not tracker.events:
            self.erase(tracker.sender_id)
            return
        with self.session_scope() as session:
            events = list(self._new_events(session, tracker))
            rows = []
            for event in events:
                data = event.as_dict()
                count_new_event(data)  # fallbacks and handoffs (bot/metrics.py)
                if self.event_broker is not None:
                    self.event_broker.publish({"sender_id": tracker.sender_id, **data})
                rows.append(self._row(tracker.sender_id, event.type_name, data))
            if rows:
                session.execute(self.SQLEvent.__table__.insert(), rows)
            last_id = self._last_id(session, tracker.sender_id)
            session.commit()
        if last_id is None:
            self._kept.pop(tracker.sender_id, None)
        elif any(isinstance(event, SessionStarted) for event in events):
            self._keep(self._latest_session(tracker), last_id)
        else:
            self._keep(tracker, last_id)

    def erase(self, sender_id: str) -> int:
        """Delete every stored event of one conversation; how many."""
        self._kept.pop(sender_id, None)
        with self.session_scope() as session:
            query = session.query(self.SQLEvent).filter(self.SQLEvent.sender_id == sender_id)
            erased = int(query.delete(synchronize_session=False))
            session.commit()
        return erased

    def _new_events(self, session: Session, tracker: DialogueStateTracker) -> Iterator[Event]:
        """The events not stored yet: past the kept count for the tracker this store handed
        out, else past the count of stored events since the session start (Rasa's query)."""
        kept = self._kept.get(tracker.sender_id)
        if kept is not None and kept.tracker is tracker and kept.domain is self.domain:
            return itertools.islice(tracker.events, kept.stored, None)
        return self._additional_events(session, tracker)

    def _latest_session(self, tracker: DialogueStateTracker) -> DialogueStateTracker:
        """What `retrieve` reads from the database after a session started: the events from the
        latest session start's timestamp on (`_event_query`), replayed into a new tracker."""
        start = max(
            event.timestamp for event in tracker.events if isinstance(event, SessionStarted)
        )
        session = [event for event in tracker.events if event.timestamp >= start]
        slots = self.domain.slots if self.domain else []
        return DialogueStateTracker.from_events(tracker.sender_id, session, slots)

    def _keep(self, tracker: DialogueStateTracker, last_id: int) -> None:
        self._kept[tracker.sender_id] = _Kept(tracker, len(tracker.events), last_id, self.domain)
        self._kept.move_to_end(tracker.sender_id)
        while len(self._kept) > self._keep_at_most:
            self._kept.popitem(last=False)

    def _last_id(self, session: Session, sender_id: str) -> int | None:
        column = self.SQLEvent.id
        query = select(func.max(column)).where(self.SQLEvent.sender_id == sender_id)
        value = session.execute(query).scalar()
        return None if value is None else int(value)

    @staticmethod
    def _row(sender_id: str, type_name: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "sender_id": sender_id,
            "type_name": type_name,
            "timestamp": data.get("timestamp"),
            "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
            "action_name": data.get("name"),
            "data": json.dumps(data),
        }


def _write_ahead_log(dbapi_connection: Any, _record: Any) -> None:
    """The embedded default's SQLite file as the CRM has it (crm_store/db.py): WAL, and no fsync
    per commit (a crash of the process loses nothing; a power cut may lose the last turns). Rasa's
    default (rollback journal, fsync on every commit) spent a tenth of the server's time in
    commits under load (docs/benchmarks.md, the profile)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


TrackerPlace = str | Path  # a SQLAlchemy URL, or the embedded default's SQLite file


@contextmanager
def _events(place: TrackerPlace) -> Iterator[Connection | None]:
    """A transaction on the tracker database; None when it has no events table (yet)."""
    if isinstance(place, Path):
        if not place.exists():
            yield None
            return
        place = f"sqlite:///{place}"
    engine = create_engine(place)
    try:
        with engine.begin() as connection:
            yield connection if inspect(connection).has_table("events") else None
    finally:
        engine.dispose()


def erase_trackers(place: TrackerPlace, sender_ids: Iterable[str]) -> int:
    """Delete the stored events of these conversations from the tracker database while no
    Rasa server runs on it (a running server erases through its HTTP API); how many events."""
    with _events(place) as connection:
        if connection is None:
            return 0
        delete = text("DELETE FROM events WHERE sender_id = :sender")
        return sum(
            int(connection.execute(delete, {"sender": sender}).rowcount)
            for sender in set(sender_ids)
        )


def purge_idle_trackers(place: TrackerPlace, *, idle_before: datetime) -> int:
    """Retention: delete whole conversations whose last event is older than `idle_before`; how
    many conversations. A conversation still in use is never cut in the middle."""
    with _events(place) as connection:
        if connection is None:
            return 0
        idle = [
            str(row[0])
            for row in connection.execute(
                text("SELECT sender_id FROM events GROUP BY sender_id HAVING MAX(timestamp) < :t"),
                {"t": idle_before.timestamp()},
            )
        ]
        delete = text("DELETE FROM events WHERE sender_id = :sender")
        for sender in idle:
            connection.execute(delete, {"sender": sender})
        return len(idle)


def tracker_texts(place: TrackerPlace, sender_id: str) -> list[str]:
    """The raw stored events of one conversation (for tests and `carebot export-customer`)."""
    with _events(place) as connection:
        if connection is None:
            return []
        rows = connection.execute(
            text("SELECT data FROM events WHERE sender_id = :sender ORDER BY id"),
            {"sender": sender_id},
        )
        return [str(row[0]) for row in rows]
