from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rasa.core.brokers.broker import EventBroker
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy import event as sa_event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot.interaction_log import CrmInteractionLog, customer_turn, describe_payload, write_turns
from crm_store import interactions
from crm_store.db import make_engine, session_scope
from crm_store.interactions import Interaction, conversation_id_for, list_interactions
from crm_store.migrate import upgrade
from crm_store.staff import create_staff_user
from tests.postgres import throwaway_database

T0 = 1_790_000_000.25  # a Rasa event timestamp (seconds since the epoch)
WRITER = "crm-interaction-log"


def user_event(
    sender: str, text: str, *, channel: str | None = "rest", at: float = T0, **intent: Any
) -> dict[str, Any]:
    return {
        "sender_id": sender,
        "event": "user",
        "timestamp": at,
        "text": text,
        "parse_data": {"intent": intent or {"name": "greet", "confidence": 0.9}, "entities": []},
        "input_channel": channel,
        "message_id": secrets.token_hex(8),
        "metadata": {},
    }


def bot_event(sender: str, text: str | None, *, at: float = T0 + 1, **extra: Any) -> dict[str, Any]:
    return {"sender_id": sender, "event": "bot", "timestamp": at, "text": text, **extra}


def turns(url: str, sender: str) -> list[Interaction]:
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            return list_interactions(session, conversation_id=conversation_id_for(sender))
    finally:
        engine.dispose()


def unmounted_volume(tmp_path: Path) -> tuple[Path, str]:
    """A database URL whose directory is a plain file: every connection attempt fails."""
    volume = tmp_path / "volume"
    volume.write_text("not mounted yet")
    return volume, f"sqlite:///{volume / 'crm.db'}"


def mount(volume: Path, url: str) -> None:
    volume.unlink()
    volume.mkdir(exist_ok=True)  # the retrying writer may create it first
    upgrade(url)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade(url)
    return url


@pytest.fixture
def make_log() -> Iterator[Callable[..., CrmInteractionLog]]:
    """Brokers with short retry delays, all stopped at the end of the test."""
    made: list[CrmInteractionLog] = []

    def make(url: str, **kwargs: Any) -> CrmInteractionLog:
        log = CrmInteractionLog(url, first_retry_s=0.05, max_retry_s=0.2, **kwargs)
        made.append(log)
        return log

    yield make
    for log in made:
        log.stop(timeout=5)


def test_turns_land_with_intent_confidence_channel_and_event_time(
    db_url: str, make_log: Callable[..., CrmInteractionLog]
) -> None:
    log = make_log(db_url)
    intent = {"name": "order_status", "confidence": 0.93}
    log.publish(user_event("s1", "where is my parcel", channel="wechat", **intent))
    log.publish(bot_event("s1", "it is on its way"))
    assert log.wait_idle(10)

    stored = turns(db_url, "s1")
    rows = [(t.speaker, t.channel, t.text, t.intent, t.confidence, t.handled_by) for t in stored]
    assert rows == [
        ("customer", "wechat", "where is my parcel", "order_status", 0.93, "bot"),
        ("bot", "wechat", "it is on its way", None, None, "bot"),
    ]
    assert stored[0].occurred_at == datetime.fromtimestamp(T0, timezone.utc)


def test_bot_turns_get_the_channel_of_the_senders_last_user_turn(
    db_url: str, make_log: Callable[..., CrmInteractionLog]
) -> None:
    log = make_log(db_url)
    log.publish(user_event("w", "hi", channel="wechat"))
    log.publish(user_event("r", "hi", channel="socketio"))
    log.publish(bot_event("w", "hello"))
    log.publish(bot_event("r", "hello"))
    log.publish(bot_event("never-spoke", "a proactive greeting"))
    assert log.wait_idle(10)
    assert [t.channel for t in turns(db_url, "w")] == ["wechat", "wechat"]
    assert [t.channel for t in turns(db_url, "r")] == ["web", "web"]
    assert [t.channel for t in turns(db_url, "never-spoke")] == ["web"]


def test_after_a_restart_a_bot_turn_takes_the_conversations_channel(
    db_url: str, make_log: Callable[..., CrmInteractionLog]
) -> None:
    first = make_log(db_url)
    first.publish(user_event("w", "hi", channel="wechat"))
    assert first.wait_idle(10)
    restarted = make_log(db_url)  # remembers no sender
    restarted.publish(bot_event("w", "a reminder", at=T0 + 60))
    assert restarted.wait_idle(10)
    assert [t.channel for t in turns(db_url, "w")] == ["wechat", "wechat"]


def test_the_same_event_published_twice_lands_once(
    db_url: str, make_log: Callable[..., CrmInteractionLog]
) -> None:
    log = make_log(db_url)
    event = user_event("s", "hi")
    log.publish(event)
    assert log.wait_idle(10)
    log.publish(event)
    log.publish(bot_event("s", "hello"))
    log.publish(bot_event("s", "hello"))
    assert log.wait_idle(10)
    assert [t.speaker for t in turns(db_url, "s")] == ["customer", "bot"]


def test_a_retry_after_a_commit_that_did_succeed_does_not_duplicate(
    db_url: str, make_log: Callable[..., CrmInteractionLog]
) -> None:
    """The database commits, then the connection drops before the writer hears back."""
    failures = []

    def lose_the_acknowledgement(session: Session) -> None:
        if threading.current_thread().name == WRITER and not failures:
            failures.append(session)
            raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))

    sa_event.listen(Session, "after_commit", lose_the_acknowledgement)
    try:
        log = make_log(db_url)
        log.publish(user_event("s", "hi"))
        log.publish(bot_event("s", "hello"))
        assert log.wait_idle(10)
    finally:
        sa_event.remove(Session, "after_commit", lose_the_acknowledgement)
    assert failures  # the writer did see a failed commit, and retried
    assert [t.speaker for t in turns(db_url, "s")] == ["customer", "bot"]


def test_a_database_that_is_down_loses_nothing_and_logs_once_each_way(
    tmp_path: Path, make_log: Callable[..., CrmInteractionLog], caplog: pytest.LogCaptureFixture
) -> None:
    volume, url = unmounted_volume(tmp_path)
    log = make_log(url)
    caplog.set_level(logging.INFO, logger="bot.interaction_log")

    for second in range(5):
        log.publish(user_event("s", f"message {second}", at=T0 + second))
    assert not log.wait_idle(0.6)  # several retries happen meanwhile
    assert log.queued == 5

    mount(volume, url)
    assert log.wait_idle(10)

    assert [t.text for t in turns(url, "s")] == [f"message {second}" for second in range(5)]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("CRM database unavailable" in m for m in messages) == 1
    assert sum("CRM database available again" in m for m in messages) == 1


def test_a_full_queue_drops_the_oldest_turns_and_says_so(
    tmp_path: Path, make_log: Callable[..., CrmInteractionLog], caplog: pytest.LogCaptureFixture
) -> None:
    volume, url = unmounted_volume(tmp_path)
    log = make_log(url, max_queued=3)
    log.publish(user_event("s", "message 0", at=T0))
    # the writer has taken the first turn and keeps retrying it: it counts against the bound
    deadline = time.monotonic() + 10
    while not any("unavailable" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the writer never tried the database"
        time.sleep(0.01)
    for second in range(1, 6):
        log.publish(user_event("s", f"message {second}", at=T0 + second))
    assert log.queued == 3
    assert any("queue full" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")

    mount(volume, url)
    assert log.wait_idle(10)
    assert [t.text for t in turns(url, "s")] == ["message 0", "message 4", "message 5"]


def test_stop_with_the_database_still_down_reports_the_lost_turns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, url = unmounted_volume(tmp_path)
    log = CrmInteractionLog(url, first_retry_s=0.05)
    log.publish(user_event("s", "hi"))
    assert log.stop(timeout=0.3) is False
    assert any("1 turns not written" in r.getMessage() for r in caplog.records)
    log.publish(user_event("s", "after the end"))  # logged, not raised


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"event": "user"},
        {"event": "bot", "sender_id": "s", "timestamp": "yesterday", "data": {"buttons": 3}},
        {"event": "user", "sender_id": "s", "parse_data": {"intent": {"confidence": "high"}}},
        {"event": "user", "sender_id": "s", "parse_data": ["not", "a", "dict"]},
        None,
    ],
)
def test_publish_never_raises(
    event: Any, db_url: str, make_log: Callable[..., CrmInteractionLog]
) -> None:
    log = make_log(db_url)
    log.publish(event)
    assert log.wait_idle(10)


def test_other_events_are_ignored_and_long_sender_ids_are_hashed(
    db_url: str, make_log: Callable[..., CrmInteractionLog]
) -> None:
    log = make_log(db_url)
    long_sender = "web-" + "x" * 200
    log.publish({"sender_id": long_sender, "event": "slot", "name": "a", "value": 1})
    log.publish({"sender_id": long_sender, "event": "action", "name": "action_listen"})
    log.publish(user_event(long_sender, "hi"))
    assert log.wait_idle(10)
    assert [t.conversation_id for t in turns(db_url, long_sender)] == [
        conversation_id_for(long_sender)
    ]


def test_an_agents_reply_is_logged_as_the_agents(
    db_url: str, make_log: Callable[..., CrmInteractionLog]
) -> None:
    engine = make_engine(db_url)
    with session_scope(engine) as session:
        agent = create_staff_user(session, username="agent", display_name="Zhang", role="agent")
    engine.dispose()
    log = make_log(db_url)
    log.publish(user_event("s", "a human please"))
    log.publish(bot_event("s", "I'm here", metadata={"handled_by": "agent", "agent_id": agent.id}))
    assert log.wait_idle(10)
    reply = turns(db_url, "s")[-1]
    assert (reply.speaker, reply.handled_by, reply.agent_id) == ("agent", "agent", agent.id)


def test_customer_turns_during_a_handoff_are_the_agents_to_handle(
    db_url: str, make_log: Callable[..., CrmInteractionLog]
) -> None:
    log = make_log(db_url)
    log.publish(user_event("s", "转人工", at=T0))
    log.publish({"sender_id": "s", "event": "pause", "timestamp": T0 + 1})
    log.publish(user_event("s", "我的快递丢了", at=T0 + 2))
    log.publish(user_event("other", "你好", at=T0 + 2))  # another conversation: still the bot's
    log.publish({"sender_id": "s", "event": "resume", "timestamp": T0 + 3})
    log.publish(user_event("s", "谢谢", at=T0 + 4))
    assert log.wait_idle(10)
    assert [(t.text, t.handled_by) for t in turns(db_url, "s")] == [
        ("转人工", "bot"),
        ("我的快递丢了", "agent"),
        ("谢谢", "bot"),
    ]
    assert [t.handled_by for t in turns(db_url, "other")] == ["bot"]


def test_a_turn_the_database_refuses_is_dropped_alone(
    db_url: str, make_log: Callable[..., CrmInteractionLog]
) -> None:
    log = make_log(db_url)
    log.publish(user_event("s", "first"))
    log.publish(bot_event("s", "from nobody", metadata={"handled_by": "agent", "agent_id": 404}))
    log.publish(bot_event("s", "last", at=T0 + 2))
    assert log.wait_idle(10)
    assert [t.text for t in turns(db_url, "s")] == ["first", "last"]


def test_a_turn_another_writer_stored_under_the_batch_is_neither_lost_nor_doubled(
    db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The log consumer and the reconciliation write the same turns: one can store a turn
    between the batch's check of its keys and its insert. The insert then fails, and the
    turns are written one by one: the other writer's turn stays, the rest are stored."""
    engine = make_engine(db_url)
    first, second = user_event("s", "first"), user_event("s", "second", at=T0 + 1)
    write_turns(engine, [customer_turn(first)])
    monkeypatch.setattr(interactions, "existing_event_keys", lambda session, event_keys: set())

    with caplog.at_level(logging.ERROR):
        write_turns(engine, [customer_turn(first), customer_turn(second)])

    engine.dispose()
    assert [t.text for t in turns(db_url, "s")] == ["first", "second"]
    assert "refused" not in caplog.text


def test_a_bot_message_without_text_is_described() -> None:
    data = {
        "buttons": [{"title": "Yes", "payload": "/affirm"}, {"payload": "/deny"}],
        "custom": {"type": "card", "id": 7},
    }
    assert describe_payload(data) == ('[buttons: Yes | /deny] [custom: {"id": 7, "type": "card"}]')
    assert describe_payload({}) is None


async def test_rasa_builds_it_from_the_endpoint_config(db_url: str) -> None:
    config = EndpointConfig(url=db_url, type="bot.interaction_log.CrmInteractionLog")
    broker = await EventBroker.create(config)
    assert isinstance(broker, CrmInteractionLog) and broker.url == db_url
    broker.publish(user_event("s", "hi"))
    await broker.close()
    assert [t.text for t in turns(db_url, "s")] == ["hi"]


# PostgreSQL: a live outage (the server goes away under an open pool and comes back).


class TcpRelay:
    """A loopback port that forwards to PostgreSQL while up; `down()` cuts every connection."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def up(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def down(self) -> None:
        assert self._listener is not None
        for sock in [self._listener, *self._sockets]:
            _cut(sock)  # shutdown() wakes the relaying threads; close() alone would not
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self._sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _cut(source)
        _cut(sink)


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def pg_database() -> Iterator[str]:
    with throwaway_database("carebot_test") as url:
        yield url


@pytest.mark.postgres
def test_postgresql_going_away_and_coming_back_loses_nothing(
    pg_database: str, make_log: Callable[..., CrmInteractionLog]
) -> None:
    upgrade(pg_database)
    direct = make_url(pg_database)
    relay = TcpRelay((direct.host or "127.0.0.1", direct.port or 5432))
    relay.up()
    log = make_log(direct.set(host="127.0.0.1", port=relay.port).render_as_string(False))
    log.publish(user_event("s", "before", at=T0))
    assert log.wait_idle(10)

    relay.down()
    log.publish(user_event("s", "during", at=T0 + 1))
    log.publish(bot_event("s", "reply", at=T0 + 2))
    assert not log.wait_idle(0.6)
    relay.up()
    assert log.wait_idle(10)

    assert [t.text for t in turns(pg_database, "s")] == ["before", "during", "reply"]
