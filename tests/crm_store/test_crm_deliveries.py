"""Deliveries: an outbox row is delivered once, whichever conversation, channel or concurrent
trigger asks; the second asker waits for the first one's transaction."""

from __future__ import annotations

import threading

import pytest
from crm_helpers import NOW, a_customer, run_concurrently
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.campaigns import create_campaign
from crm_store.clock import Clock, ManualClock, fixed
from crm_store.db import session_scope
from crm_store.deliveries import find_delivery, record_delivery
from crm_store.errors import InvalidInput, NotFound
from crm_store.models import CareDelivery
from crm_store.outbox import enqueue_care_message

AT = fixed(NOW)


def a_care_message(session: Session, clock: Clock = AT) -> int:
    create_campaign(session, key="tips", name="养护贴士", kind="care_tip", category="care")
    customer = a_customer(session, clock=clock)
    message, _ = enqueue_care_message(
        session,
        customer_id=customer.id,
        campaign_key="tips",
        period="2026-11",
        channel="wechat",
        clock=clock,
    )
    return message.id


def test_a_row_is_delivered_once_whatever_conversation_asks(
    session: Session, clock: ManualClock
) -> None:
    message_id = a_care_message(session, clock)
    assert find_delivery(session, care_message_id=message_id) is None
    assert record_delivery(
        session, care_message_id=message_id, conversation_id="o_1", channel="wechat", clock=clock
    )
    for conversation, channel in (("o_1", "wechat"), ("web-1", "web")):
        assert not record_delivery(
            session,
            care_message_id=message_id,
            conversation_id=conversation,
            channel=channel,
            clock=clock,
        )
    delivery = find_delivery(session, care_message_id=message_id)
    assert delivery is not None
    assert (delivery.conversation_id, delivery.channel, delivery.delivered_at) == (
        "o_1",
        "wechat",
        clock(),
    )


def test_only_a_stored_row_on_a_known_channel_is_delivered(session: Session) -> None:
    with pytest.raises(NotFound):
        record_delivery(session, care_message_id=999, conversation_id="o_1", channel="wechat")
    message_id = a_care_message(session)
    with pytest.raises(InvalidInput):
        record_delivery(session, care_message_id=message_id, conversation_id="o_1", channel="sms")


def _deliveries(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(CareDelivery)))


def test_concurrent_triggers_of_one_row_deliver_it_once(committing: Engine) -> None:
    """Two triggers of one row (a retry racing the first, a second dispatcher) in two
    conversations at the same moment: exactly one of them delivers."""
    with session_scope(committing) as session:
        message_id = a_care_message(session)

    def deliver(conversation: str) -> bool:
        with session_scope(committing) as session:
            return record_delivery(
                session, care_message_id=message_id, conversation_id=conversation, channel="web"
            )

    assert sorted(run_concurrently(lambda: deliver("web-a"), lambda: deliver("web-b"))) == [
        False,
        True,
    ]
    assert _deliveries(committing) == 1


@pytest.mark.parametrize("first_commits", [True, False])
def test_the_second_trigger_waits_for_the_first_and_gets_its_outcome(
    committing: Engine, first_commits: bool
) -> None:
    """The second asker blocks on the first one's open transaction; it delivers only if the
    first rolled back (its action failed before anything reached the customer)."""
    with session_scope(committing) as session:
        message_id = a_care_message(session)
    recorded, release, outcome = threading.Event(), threading.Event(), []

    def first() -> None:
        try:
            with session_scope(committing) as session:
                record_delivery(
                    session, care_message_id=message_id, conversation_id="web-a", channel="web"
                )
                recorded.set()
                release.wait(10)
                if not first_commits:
                    raise RuntimeError("the action failed")
        except RuntimeError:
            pass

    def second() -> None:
        with session_scope(committing) as session:
            outcome.append(
                record_delivery(
                    session, care_message_id=message_id, conversation_id="web-b", channel="web"
                )
            )

    holder = threading.Thread(target=first)
    holder.start()
    assert recorded.wait(10)
    waiter = threading.Thread(target=second)
    waiter.start()
    waiter.join(timeout=0.5)
    assert waiter.is_alive(), "the second trigger should wait for the first transaction"
    release.set()
    holder.join(10)
    waiter.join(10)
    assert outcome == [not first_commits]
    assert _deliveries(committing) == 1
