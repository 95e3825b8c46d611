from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any

import pytest
from crm_helpers import a_customer, empty_all_tables, run_concurrently
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_store.clock import ManualClock
from crm_store.customers import get_customer
from crm_store.db import session_scope
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.handoffs import (
    Handoff,
    accept_handoff,
    close_handoff,
    find_open_handoff,
    list_handoffs,
    request_handoff,
)
from crm_store.interactions import (
    TurnToLog,
    conversation_id_for,
    end_conversation,
    ensure_conversation,
    get_conversation,
    list_conversations,
    list_customer_interactions,
    list_interactions,
    log_interaction,
    log_turns,
)
from crm_store.models import Handoff as HandoffRow
from crm_store.staff import create_staff_user


def test_log_interaction_creates_the_conversation_and_keeps_turn_order(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session, clock=clock)
    log_interaction(
        session,
        conversation_id="c1",
        channel="wechat",
        speaker="customer",
        text="我的订单到哪了",
        intent="order_status",
        confidence=0.93,
        customer_id=customer.id,
        clock=clock,
    )
    clock.advance(timedelta(seconds=2))
    log_interaction(session, conversation_id="c1", channel="wechat", speaker="bot", clock=clock)
    turns = list_interactions(session, conversation_id="c1")
    assert [(t.speaker, t.intent, t.customer_id) for t in turns] == [
        ("customer", "order_status", customer.id),
        ("bot", None, customer.id),
    ]
    conversation = get_conversation(session, conversation_id="c1")
    assert (conversation.channel, conversation.last_message_at) == ("wechat", clock())
    assert get_customer(session, customer_id=customer.id).last_active_at == turns[0].occurred_at
    assert [i.id for i in list_customer_interactions(session, customer_id=customer.id)] == [
        turns[1].id,
        turns[0].id,
    ]


def test_a_customer_identified_mid_conversation_is_attached(session: Session) -> None:
    log_interaction(session, conversation_id="c2", channel="web", speaker="customer")
    customer = a_customer(session)
    ensure_conversation(session, conversation_id="c2", channel="web", customer_id=customer.id)
    assert [c.id for c in list_conversations(session, customer_id=customer.id)] == ["c2"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"speaker": "robot"},
        {"channel": "sms"},
        {"confidence": 1.5},
        {"handled_by": "nobody"},
        {"speaker": "agent", "handled_by": "agent"},
    ],
)
def test_log_interaction_rejects_bad_input(session: Session, kwargs: dict) -> None:
    with pytest.raises(InvalidInput):
        log_interaction(
            session, **{"conversation_id": "c", "channel": "web", "speaker": "bot", **kwargs}
        )


def test_a_turn_logged_twice_under_one_event_key_is_stored_once(
    session: Session, clock: ManualClock
) -> None:
    first = log_interaction(
        session, conversation_id="c4", channel="web", speaker="bot", event_key="c4:bot:1.5"
    )
    clock.advance(timedelta(seconds=5))
    again = log_interaction(
        session,
        conversation_id="c4",
        channel="web",
        speaker="bot",
        text="different",
        event_key="c4:bot:1.5",
        clock=clock,
    )
    assert again == first
    other = log_interaction(
        session, conversation_id="c4", channel="web", speaker="bot", event_key="c4:bot:2.5"
    )
    assert [t.id for t in list_interactions(session, conversation_id="c4")] == [first.id, other.id]


def _turn(
    conversation_id: str, speaker: str, at: datetime, key: str | None, **kw: Any
) -> TurnToLog:
    values: dict[str, Any] = {
        "channel": None,
        "text": None,
        "intent": None,
        "confidence": None,
        "handled_by": "bot",
        "agent_id": None,
        **kw,
    }
    return TurnToLog(conversation_id, speaker, occurred_at=at, event_key=key, **values)


def test_log_turns_stores_a_batch_as_log_interaction_stores_each(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session, clock=clock)
    ensure_conversation(session, conversation_id="b1", channel="wechat", customer_id=customer.id)
    early, late = clock() + timedelta(seconds=1), clock() + timedelta(seconds=2)
    batch = [
        _turn("b1", "customer", early, "b1:user:1", text="积分", intent="points_balance"),
        _turn("b1", "bot", late, "b1:bot:2", text="您有 120 积分"),
        _turn("b1", "bot", late, "b1:bot:2", text="the same event published twice"),
        _turn("b2", "customer", early, "b2:user:1", channel="web", text="你好"),
        _turn("b3", "bot", late, None, text="no key, no conversation yet"),
    ]

    assert log_turns(session, batch, default_channel="web") == 4
    assert log_turns(session, batch[:2], default_channel="web") == 0  # a retried batch

    first = list_interactions(session, conversation_id="b1")
    assert [(t.speaker, t.channel, t.customer_id, t.text) for t in first] == [
        ("customer", "wechat", customer.id, "积分"),
        ("bot", "wechat", customer.id, "您有 120 积分"),
    ]
    assert get_conversation(session, conversation_id="b1").last_message_at == late
    assert get_customer(session, customer_id=customer.id).last_active_at == early
    assert get_conversation(session, conversation_id="b2").channel == "web"
    assert [t.text for t in list_interactions(session, conversation_id="b3")] == [
        "no key, no conversation yet"
    ]


@pytest.mark.parametrize("bad", [{"speaker": "robot"}, {"channel": "sms"}, {"confidence": 2.0}])
def test_log_turns_refuses_a_bad_turn_and_stores_none(session: Session, bad: dict) -> None:
    good = _turn("b4", "bot", datetime(2026, 12, 3, tzinfo=timezone.utc), "b4:bot:1")
    wrong = replace(good, event_key="b4:bot:2", **bad)
    with pytest.raises(InvalidInput):
        log_turns(session, [good, wrong], default_channel="web")
    assert list_interactions(session, conversation_id="b4") == []


def test_an_event_key_does_not_hide_another_constraint(session: Session) -> None:
    with pytest.raises(InvalidInput):
        log_interaction(
            session,
            conversation_id="c5",
            channel="web",
            speaker="agent",
            handled_by="agent",
            agent_id=999_999,
            event_key="c5:bot:1.0",
        )


def test_long_sender_ids_hash_to_a_stable_conversation_id() -> None:
    long_id = "x" * 65
    assert conversation_id_for("web-123") == "web-123"
    assert conversation_id_for("y" * 64) == "y" * 64
    hashed = conversation_id_for(long_id)
    assert len(hashed) == 64 and hashed.startswith("sha256:")
    assert hashed == conversation_id_for(long_id) != conversation_id_for(long_id + "z")


def test_end_conversation_and_missing_conversation(session: Session, clock: ManualClock) -> None:
    ensure_conversation(session, conversation_id="c3", channel="web", clock=clock)
    assert end_conversation(session, conversation_id="c3", clock=clock).ended_at == clock()
    with pytest.raises(NotFound):
        get_conversation(session, conversation_id="nope")


def test_handoff_lifecycle(session: Session, clock: ManualClock) -> None:
    agent = create_staff_user(session, username="agent1", display_name="客服小张", role="agent")
    first = request_handoff(
        session, conversation_id="c4", channel="web", reason="asked_for_human", clock=clock
    )
    assert request_handoff(session, conversation_id="c4", channel="web", reason="again") == first
    assert [h.id for h in list_handoffs(session, state="waiting")] == [first.id]
    active = accept_handoff(session, handoff_id=first.id, agent_id=agent.id, clock=clock)
    assert (active.state, active.agent_id) == ("active", agent.id)
    with pytest.raises(Conflict):
        accept_handoff(session, handoff_id=first.id, agent_id=agent.id)
    closed = close_handoff(session, handoff_id=first.id, outcome="resolved", clock=clock)
    assert (closed.state, closed.outcome) == ("closed", "resolved")
    assert find_open_handoff(session, conversation_id="c4") is None
    with pytest.raises(NotFound):
        accept_handoff(session, handoff_id=999_999, agent_id=agent.id)


def test_a_closed_handoff_lets_the_conversation_ask_again(
    session: Session, clock: ManualClock
) -> None:
    first = request_handoff(session, conversation_id="c6", channel="web", reason="r", clock=clock)
    close_handoff(session, handoff_id=first.id, outcome="resolved", clock=clock)
    again = request_handoff(session, conversation_id="c6", channel="web", reason="r", clock=clock)
    assert again.id != first.id and again.state == "waiting"
    assert find_open_handoff(session, conversation_id="c6") == again


def test_a_handoff_request_keeps_the_conversations_customer(session: Session) -> None:
    customer = a_customer(session)
    ensure_conversation(session, conversation_id="c7", channel="web", customer_id=customer.id)
    handoff = request_handoff(session, conversation_id="c7", channel="web", reason="r")
    assert handoff.customer_id == customer.id
    unknown = request_handoff(session, conversation_id="c8", channel="web", reason="r")
    assert unknown.customer_id is None


def test_the_database_refuses_a_second_open_handoff(session: Session, clock: ManualClock) -> None:
    ensure_conversation(session, conversation_id="c9", channel="web")

    def handoff(state: str) -> HandoffRow:
        return HandoffRow(
            conversation_id="c9", queue="general", reason="r", state=state, requested_at=clock()
        )

    session.add_all([handoff("closed"), handoff("closed"), handoff("active")])
    session.flush()
    session.add(handoff("waiting"))
    with pytest.raises(IntegrityError):
        session.flush()


@pytest.mark.parametrize("logged_before", [True, False], ids=["known", "new_conversation"])
def test_concurrent_handoff_requests_open_one_handoff(engine: Engine, logged_before: bool) -> None:
    """Two transactions request a handoff for one conversation at once: both get the same one."""

    def request(conversation_id: str) -> Handoff:
        with session_scope(engine) as session:
            return request_handoff(
                session, conversation_id=conversation_id, channel="web", reason="customer_request"
            )

    try:
        for conversation_id in (f"race-{n}" for n in range(5)):
            if logged_before:
                with session_scope(engine) as session:
                    ensure_conversation(session, conversation_id=conversation_id, channel="web")
            first, second = run_concurrently(*[partial(request, conversation_id)] * 2)
            with session_scope(engine) as session:
                waiting = list_handoffs(session, state="waiting")
            assert first == second
            assert [h.id for h in waiting if h.conversation_id == conversation_id] == [first.id]
    finally:
        empty_all_tables(engine)
