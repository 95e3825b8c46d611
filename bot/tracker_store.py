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
running server erases between two turns, never under one. Rasa keeps no tracker cache of its
own beyond a turn. With the server stopped, `erase_trackers` deletes the rows directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.event import listen
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from bot.metrics import count_new_event


class CareSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.engine.dialect.name == "sqlite" and self.engine.url.database:
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

    async def save(self, tracker: DialogueStateTracker) -> None:
        if not tracker.events:
            self.erase(tracker.sender_id)
            return
        with self.session_scope() as session:
            events = list(self._additional_events(session, tracker))
            for event in events:
                data = event.as_dict()
                count_new_event(data)  # fallbacks and handoffs (bot/metrics.py)
                if self.event_broker is not None:
                    self.event_broker.publish({"sender_id": tracker.sender_id, **data})
                session.add(self._row(tracker.sender_id, event.type_name, data))
            session.commit()

    def erase(self, sender_id: str) -> int:
        """Delete every stored event of one conversation; how many."""
        with self.session_scope() as session:
            query = session.query(self.SQLEvent).filter(self.SQLEvent.sender_id == sender_id)
            erased = int(query.delete(synchronize_session=False))
            session.commit()
        return erased

    def _row(self, sender_id: str, type_name: str, data: dict[str, Any]) -> Any:
        return self.SQLEvent(
            sender_id=sender_id,
            type_name=type_name,
            timestamp=data.get("timestamp"),
            intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
            action_name=data.get("name"),
            data=json.dumps(data),
        )


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
