"""The care scheduler that `carebot run` starts, end to end: a due outbox row goes out through
dispatch, Rasa's trigger_intent and the care action, and arrives in the WeChat simulator or in
the web widget; a re-trigger after a crash between send and acknowledgement shows nothing new,
also when the conversation started a new session in between.

The system fixture runs the scheduler with CAREBOT_SCHEDULER_AUTOPLAN=0 (it plans nothing on
its own) and dispatch every second, so these tests queue rows themselves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from crm_store.campaigns.planning import ensure_campaigns
from crm_store.clock import utcnow
from crm_store.customers import set_quiet_hours
from crm_store.db import make_engine, session_scope
from crm_store.deliveries import find_delivery
from crm_store.identities import find_customer_by_identity
from crm_store.models import CareMessage as MessageRow
from crm_store.outbox import (
    CareMessage,
    enqueue_care_message,
    get_care_message,
    reclaim_stale_claims,
)
from tests.integration.system import System
from tests.integration.test_webchat import a_web_customer, login_token, texts
from tests.integration.test_wechat_sim import DEMO, act, last_id, sim_call
from tests.integration.webchat_client import WebChatCustomer

pytestmark = pytest.mark.integration


def crm(system: System) -> Engine:
    return make_engine(f"sqlite:///{system.var_dir / 'crm.db'}")


def queue(system: System, customer_id: int, campaign: str, period: str, channel: str) -> int:
    engine = crm(system)
    try:
        with session_scope(engine) as session:
            ensure_campaigns(session)
            message, created = enqueue_care_message(
                session,
                customer_id=customer_id,
                campaign_key=campaign,
                period=period,
                channel=channel,
            )
        assert created
        return message.id
    finally:
        engine.dispose()


def row(system: System, message_id: int) -> CareMessage:
    engine = crm(system)
    try:
        with session_scope(engine) as session:
            return get_care_message(session, message_id=message_id)
    finally:
        engine.dispose()


def wait_sent(system: System, message_id: int, attempts: int = 1) -> CareMessage:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = row(system, message_id)
        if current.state == "sent" and current.attempts >= attempts:
            return current
        time.sleep(0.3)
    raise AssertionError(f"care message {message_id} not sent: {row(system, message_id)}")


def bot_messages(system: System, openid: str, since: int) -> list[dict[str, Any]]:
    log = sim_call(system, "GET", f"/sim/api/log?openid={openid}&since={since}")
    return [record for record in log if record["sender"] == "bot" and record["errcode"] == 0]


@pytest.fixture
def demo_customer_id(system: System) -> Iterator[int]:
    """王小明, without quiet hours while the test runs: the scheduler runs on the real clock,
    and at night in Shanghai it would rightly hold the message until the morning."""
    engine = crm(system)
    try:
        with session_scope(engine) as session:
            customer = find_customer_by_identity(session, kind="wechat_openid", value=DEMO)
            assert customer is not None and customer.name == "王小明"
            set_quiet_hours(session, customer_id=customer.id, quiet_hours=None)
        yield customer.id
        with session_scope(engine) as session:
            start, end = customer.quiet_start, customer.quiet_end
            usual = (start, end) if start is not None and end is not None else None
            set_quiet_hours(session, customer_id=customer.id, quiet_hours=usual)
    finally:
        engine.dispose()


def test_a_due_care_message_reaches_the_demo_follower_once_even_when_retriggered(
    system: System, demo_customer_id: int
) -> None:
    # a follower has followed the Official Account: their conversation knows its channel
    act(system, DEMO, "event", {"event": "subscribe"})
    time.sleep(2)
    since = last_id(system)
    message_id = queue(system, demo_customer_id, "follow_up", "2026-11", "wechat")

    wait_sent(system, message_id)
    time.sleep(2)  # the action has answered; nothing more should come
    [delivered] = bot_messages(system, DEMO, since)
    assert delivered["kind"] in {"cs", "template"} and "王小明" in delivered["content"]

    # A crash between the send and its acknowledgement: the row is stuck in `sending`, the
    # reclaim makes it retryable, the scheduler triggers Rasa again, and the care action finds
    # the care_message_id already answered in the conversation.
    engine = crm(system)
    try:
        with session_scope(engine) as session:
            stuck = session.get(MessageRow, message_id)
            stuck.state, stuck.updated_at = "sending", utcnow() - timedelta(hours=1)
        with session_scope(engine) as session:
            assert reclaim_stale_claims(session, older_than=timedelta(minutes=10)) == 1
    finally:
        engine.dispose()
    assert wait_sent(system, message_id, attempts=2).attempts == 2
    time.sleep(2)
    assert bot_messages(system, DEMO, since) == [delivered]


def test_a_retry_in_a_new_session_of_the_conversation_says_nothing_again(
    system: System, demo_customer_id: int
) -> None:
    """Exactly once beyond the conversation's history (issue 18): the conversation starts a new
    session between the delivery and the retry, so the earlier trigger is no longer in the
    tracker the action reads; the delivery recorded in the CRM keeps the retry silent."""
    act(system, DEMO, "event", {"event": "subscribe"})
    time.sleep(2)
    since = last_id(system)
    message_id = queue(system, demo_customer_id, "holiday", "2026-mid_autumn", "wechat")
    wait_sent(system, message_id)
    time.sleep(2)
    [delivered] = bot_messages(system, DEMO, since)
    assert "王小明" in delivered["content"]

    status, _ = system.post(
        f"/conversations/{DEMO}/execute", {"name": "action_session_start"}, token=True
    )
    assert status == 200
    engine = crm(system)
    try:
        with session_scope(engine) as session:
            stuck = session.get(MessageRow, message_id)
            stuck.state, stuck.updated_at = "sending", utcnow() - timedelta(hours=1)
        with session_scope(engine) as session:
            assert reclaim_stale_claims(session, older_than=timedelta(minutes=10)) == 1
        assert wait_sent(system, message_id, attempts=2).attempts == 2
        time.sleep(2)
        assert bot_messages(system, DEMO, since) == [delivered]
        with session_scope(engine) as session:
            delivery = find_delivery(session, care_message_id=message_id)
        assert delivery is not None and delivery.channel == "wechat"
    finally:
        engine.dispose()


def test_a_due_care_message_reaches_a_connected_web_customer(system: System) -> None:
    user, _ = a_web_customer(system, "赵敏", quiet_hours=None)
    engine = crm(system)
    try:
        with session_scope(engine) as session:
            customer = find_customer_by_identity(session, kind="web_user", value=user)
        assert customer is not None
    finally:
        engine.dispose()

    async def scenario() -> list[str]:
        widget = await WebChatCustomer(system.rasa_url, login_token(system, user)).open()
        message_id = await asyncio.to_thread(
            queue, system, customer.id, "follow_up", "2026-11", "web"
        )
        shown = texts(await widget.messages_until_quiet(first=60))
        await asyncio.to_thread(wait_sent, system, message_id)
        await widget.close()
        return shown

    shown = asyncio.run(scenario())
    assert len(shown) == 1 and shown[0].startswith("赵敏，您好！"), shown
