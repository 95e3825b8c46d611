"""The log consumer's reconciliation from Rasa's tracker store (bot/reconcile.py), on the
machine's PostgreSQL (both databases): turns stored but never published reach the interaction
log once, rows committed late with a lower id are read, and who had the conversation comes from
the tracker, not from what arrived first."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.future import create_engine

from bot.interaction_log import TurnReader, write_turns
from bot.log_consumer import LogConsumer
from bot.reconcile import ReconcileConfig, Reconciler, tracker_source
from crm_store.db import make_engine, session_scope
from crm_store.migrate import upgrade
from crm_store.watermarks import get_watermark, set_watermark
from tests.bot.test_interaction_log import bot_event, turns, user_event
from tests.bot.test_log_consumer import config, consume_until, names  # noqa: F401 (fixture)
from tests.postgres import throwaway_databases

INSERT = text(
    "INSERT INTO events (sender_id, type_name, timestamp, data) "
    "VALUES (:sender, :kind, :at, :data) RETURNING id"
)


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """A tracker store with Rasa's `events` table and a migrated CRM, both on PostgreSQL."""
    with throwaway_databases("carebot_reconcile") as create:
        tracker_url, crm_url = create(), create()
        engine = create_engine(tracker_url)
        SQLTrackerStore.SQLEvent.__table__.create(engine)
        engine.dispose()
        upgrade(crm_url)
        yield tracker_url, crm_url


def store(connection: Connection, event: dict[str, Any]) -> int:
    """As the tracker store saves an event (bot/tracker_store.py): the event without its sender
    as JSON; the row's id."""
    data = {key: value for key, value in event.items() if key != "sender_id"}
    row = {
        "sender": event["sender_id"],
        "kind": event["event"],
        "at": event.get("timestamp"),
        "data": json.dumps(data),
    }
    return int(connection.execute(INSERT, row).scalar_one())


def store_all(tracker_url: str, events: list[dict[str, Any]]) -> list[int]:
    engine = create_engine(tracker_url)
    try:
        with engine.begin() as connection:
            return [store(connection, event) for event in events]
    finally:
        engine.dispose()


def conversation(
    sender: str, count: int, at: float = 1_790_000_000.0, channel: str = "rest"
) -> list[dict[str, Any]]:
    """`count` turns: the customer, an action Rasa logs (no turn), the bot."""
    events: list[dict[str, Any]] = []
    for i in range(count):
        events.append(user_event(sender, f"问题{i}", at=at + 3 * i, channel=channel))
        events.append(
            {"sender_id": sender, "event": "action", "name": "x", "timestamp": at + 3 * i + 1}
        )
        events.append(bot_event(sender, f"回答{i}", at=at + 3 * i + 2))
    return events


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reconciler(databases: tuple[str, str], clock: Clock | None = None) -> Reconciler:
    tracker_url, crm_url = databases
    return Reconciler(ReconcileConfig(tracker_url, crm_url, margin_s=60), clock or Clock())


def watermark(databases: tuple[str, str]) -> int:
    engine = make_engine(databases[1])
    try:
        with session_scope(engine) as session:
            return get_watermark(session, source=tracker_source(databases[0]))
    finally:
        engine.dispose()


def test_turns_stored_but_never_published_are_written_once(databases: tuple[str, str]) -> None:
    senders = [f"rest:{uuid.uuid4().hex[:8]}" for _ in range(3)]
    store_all(databases[0], [event for sender in senders for event in conversation(sender, 2)])
    first = reconciler(databases)
    try:
        done = first.reconcile_once()
        again = first.reconcile_once()
    finally:
        first.close()
    assert (done.events, done.turns, done.written) == (12, 12, 12)  # the actions are not read
    assert (again.turns, again.written) == (12, 0)
    for sender in senders:
        logged = [(t.speaker, t.text, t.channel, t.handled_by) for t in turns(databases[1], sender)]
        assert logged == [
            ("customer", "问题0", "web", "bot"),
            ("bot", "回答0", "web", "bot"),
            ("customer", "问题1", "web", "bot"),
            ("bot", "回答1", "web", "bot"),
        ]


def test_turns_the_broker_delivered_are_not_written_again(databases: tuple[str, str]) -> None:
    """RabbitMQ delivered the first two turns and the last customer turn; an earlier pass read
    up to that one. The bot's reply to it, reconciled alone, is on the conversation's channel
    (WeChat, from the CRM)."""
    sender = f"wechat:{uuid.uuid4().hex[:8]}"
    events = conversation(sender, 3, channel="wechat")
    ids = store_all(databases[0], events)
    reader, engine = TurnReader(), make_engine(databases[1])
    try:
        write_turns(engine, [turn for event in events[:7] if (turn := reader.read(event))])
        with session_scope(engine) as session:
            set_watermark(session, source=tracker_source(databases[0]), event_id=ids[6])
    finally:
        engine.dispose()
    one = reconciler(databases)
    try:
        assert one.reconcile_once().written == 1
    finally:
        one.close()
    logged = [(t.speaker, t.text, t.channel) for t in turns(databases[1], sender)]
    assert len(logged) == 6 and logged[-1] == ("bot", "回答2", "wechat")


def test_a_row_committed_late_with_a_lower_id_is_read_within_the_margin(
    databases: tuple[str, str],
) -> None:
    """Two replicas: one inserts first and commits 30 s later, after the other's row (a higher
    id) was read. The watermark stays below until a pass 60 s after it saw the higher id."""
    tracker_url = databases[0]
    late, early = f"rest:{uuid.uuid4().hex[:8]}", f"rest:{uuid.uuid4().hex[:8]}"
    clock = Clock()
    one = reconciler(databases, clock)
    engine = create_engine(tracker_url)
    try:
        slow = engine.connect()
        transaction = slow.begin()
        late_id = store(slow, user_event(late, "慢的", at=1_790_000_000.0))
        [early_id] = store_all(tracker_url, [user_event(early, "快的", at=1_790_000_001.0)])
        assert late_id < early_id
        assert one.reconcile_once().written == 1
        assert watermark(databases) == 0
        transaction.commit()
        slow.close()
        clock.now += 30
        assert one.reconcile_once().written == 1  # the late row, below the one already read
        assert [t.text for t in turns(databases[1], late)] == ["慢的"]
        clock.now += 31
        assert one.reconcile_once().watermark == early_id  # seen 61 s ago
        assert watermark(databases) == early_id
    finally:
        one.close()
        engine.dispose()
    restarted = reconciler(databases)
    try:
        assert restarted.reconcile_once().events == 0  # nothing below the stored watermark again
    finally:
        restarted.close()


def test_who_had_the_conversation_comes_from_the_tracker_not_the_arrival_order(
    databases: tuple[str, str],
) -> None:
    """A WeChat customer is handed to a person and back. The broker delivered everything but the
    turn said during the handoff (its replica died) and the pause is below the watermark: the
    reconciled turn is still the agent's, on WeChat."""
    sender = f"wechat:{uuid.uuid4().hex[:8]}"
    at = 1_790_000_000.0
    events = [
        user_event(sender, "转人工", channel="wechat", at=at),
        {"sender_id": sender, "event": "pause", "timestamp": at + 1},
        user_event(sender, "我的订单呢", channel="wechat", at=at + 2),
        bot_event(sender, "在查", at=at + 3, metadata={"handled_by": "agent", "agent_id": None}),
        {"sender_id": sender, "event": "resume", "timestamp": at + 4},
        user_event(sender, "谢谢", channel="wechat", at=at + 5),
        bot_event(sender, "不客气", at=at + 6),
    ]
    ids = store_all(databases[0], events)
    delivered = [events[0], events[1], events[4], events[5]]
    reader, engine = TurnReader(), make_engine(databases[1])
    try:
        write_turns(engine, [turn for event in delivered if (turn := reader.read(event))])
        with session_scope(engine) as session:  # an earlier pass read up to the pause
            set_watermark(session, source=tracker_source(databases[0]), event_id=ids[1])
    finally:
        engine.dispose()
    one = reconciler(databases)
    try:
        assert one.reconcile_once().written == 3
    finally:
        one.close()
    logged = [(t.speaker, t.text, t.channel, t.handled_by) for t in turns(databases[1], sender)]
    assert logged == [
        ("customer", "转人工", "wechat", "bot"),
        ("customer", "我的订单呢", "wechat", "agent"),
        ("bot", "在查", "wechat", "agent"),
        ("customer", "谢谢", "wechat", "bot"),
        ("bot", "不客气", "wechat", "bot"),
    ]


def test_the_log_consumer_reconciles_what_rabbitmq_never_got(
    names: tuple[str, str],  # noqa: F811 (fixture)
    databases: tuple[str, str],
) -> None:
    """The consumer process's loop: nothing is published, the tracker's turns arrive anyway."""
    sender = f"rest:{uuid.uuid4().hex[:8]}"
    store_all(databases[0], conversation(sender, 2))
    reconcile = ReconcileConfig(databases[0], databases[1], every_s=0.2)
    settings = {**config(names, databases[1]).__dict__, "reconcile": reconcile}

    async def scenario() -> LogConsumer:
        consumer = LogConsumer(type(config(names, databases[1]))(**settings))
        await consume_until(consumer, lambda: consumer.stats.reconciled == 4)
        return consumer

    consumer = asyncio.run(scenario())
    assert consumer.stats.messages == 0 and consumer.stats.reconciled == 4
    assert [t.text for t in turns(databases[1], sender)] == ["问题0", "回答0", "问题1", "回答1"]
