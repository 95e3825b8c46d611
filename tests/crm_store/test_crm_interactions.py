from __future__ import annotations

from datetime import timedelta

import pytest
from crm_helpers import a_customer
from sqlalchemy.orm import Session

from crm_store.clock import ManualClock
from crm_store.customers import get_customer
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.handoffs import (
    accept_handoff,
    close_handoff,
    find_open_handoff,
    list_handoffs,
    request_handoff,
)
from crm_store.interactions import (
    end_conversation,
    ensure_conversation,
    get_conversation,
    list_conversations,
    list_customer_interactions,
    list_interactions,
    log_interaction,
)
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
