from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from crm_store.clock import ManualClock
from crm_store.errors import InvalidInput
from crm_store.webchat import (
    acknowledge,
    end_presence,
    history,
    is_connected,
    renew_presence,
    store_message,
    undelivered,
)


def _bot(session: Session, session_id: str, text: str, clock: ManualClock) -> int:
    return store_message(
        session, session_id=session_id, sender="bot", payload={"text": text}, clock=clock
    ).id


def test_history_is_the_sessions_messages_oldest_first(
    session: Session, clock: ManualClock
) -> None:
    store_message(session, session_id="s1", sender="user", payload={"text": "你好"}, clock=clock)
    _bot(session, "s1", "您好", clock)
    _bot(session, "other", "不是你的", clock)
    shown = history(session, session_id="s1")
    assert [(m.sender, m.payload["text"]) for m in shown] == [("user", "你好"), ("bot", "您好")]
    assert shown[0].created_at == clock()


def test_history_is_the_latest_messages_once_everything_was_seen(
    session: Session, clock: ManualClock
) -> None:
    seen = [_bot(session, "s1", f"第{n}条", clock) for n in range(5)]
    acknowledge(session, session_id="s1", up_to_id=seen[-1], clock=clock)
    assert [m.id for m in history(session, session_id="s1", limit=3)] == seen[2:]


def test_an_unseen_message_older_than_the_limit_still_comes_back(
    session: Session, clock: ManualClock
) -> None:
    old = _bot(session, "s1", "离线时发来的", clock)
    users = [
        store_message(
            session, session_id="s1", sender="user", payload={"text": str(n)}, clock=clock
        ).id
        for n in range(4)
    ]
    assert [m.id for m in history(session, session_id="s1", limit=2)] == [old, *users[2:]]


def test_acknowledging_is_cumulative_and_idempotent(session: Session, clock: ManualClock) -> None:
    first, second, third = (_bot(session, "s1", t, clock) for t in ("一", "二", "三"))
    clock.advance(timedelta(seconds=5))
    assert acknowledge(session, session_id="s1", up_to_id=second, clock=clock) == 2
    assert acknowledge(session, session_id="s1", up_to_id=second, clock=clock) == 0
    assert [m.id for m in undelivered(session, session_id="s1")] == [third]
    delivered = {m.id: m.delivered_at for m in history(session, session_id="s1")}
    assert delivered == {first: clock(), second: clock(), third: None}


def test_an_ack_never_touches_another_session(session: Session, clock: ManualClock) -> None:
    mine = _bot(session, "s1", "一", clock)
    theirs = _bot(session, "s2", "二", clock)
    assert acknowledge(session, session_id="s1", up_to_id=theirs, clock=clock) == 1
    assert [m.id for m in undelivered(session, session_id="s2")] == [theirs]
    assert undelivered(session, session_id="s1") == []
    assert mine < theirs


def test_a_message_needs_a_known_sender_and_a_session(session: Session) -> None:
    with pytest.raises(InvalidInput):
        store_message(session, session_id="s1", sender="agent", payload={})
    with pytest.raises(InvalidInput):
        store_message(session, session_id=" ", sender="bot", payload={})


def test_presence_is_a_lease(session: Session, clock: ManualClock) -> None:
    assert not is_connected(session, session_id="s1", clock=clock)
    renew_presence(session, session_ids=["s1"], lease=timedelta(seconds=90), clock=clock)
    assert is_connected(session, session_id="s1", clock=clock)
    clock.advance(timedelta(seconds=60))
    renew_presence(session, session_ids=["s1", "s1"], lease=timedelta(seconds=90), clock=clock)
    clock.advance(timedelta(seconds=60))
    assert is_connected(session, session_id="s1", clock=clock)
    clock.advance(timedelta(seconds=31))
    assert not is_connected(session, session_id="s1", clock=clock)


def test_a_closed_socket_ends_presence_at_once(session: Session, clock: ManualClock) -> None:
    renew_presence(session, session_ids=["s1", "s2"], lease=timedelta(seconds=90), clock=clock)
    end_presence(session, session_id="s1")
    assert not is_connected(session, session_id="s1", clock=clock)
    assert is_connected(session, session_id="s2", clock=clock)
