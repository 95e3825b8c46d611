"""Care flows end to end: the real Rasa server and action server over the REST channel, the
answers the customer reads and what the CRM keeps."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bot.settings import PROJECT_DIR
from crm_store.campaigns.rules import half_year_period
from crm_store.customers import create_customer
from crm_store.db import make_engine, session_scope
from crm_store.identities import find_customer_by_identity, link_identity
from crm_store.interactions import list_interactions
from crm_store.models import PointsEntry
from crm_store.offers import list_coupons
from crm_store.orders import NewItem, create_order
from crm_store.outbox import enqueue_care_message
from tests.care_helpers import a_win_back_coupon
from tests.integration.system import System, children_of

pytestmark = pytest.mark.integration

DOMAIN = yaml.safe_load((PROJECT_DIR / "domain.yml").read_text(encoding="utf-8"))
DEMO_ORDER = "DD202611020387"


def patterns(response: str) -> list[re.Pattern[str]]:
    """Each variant's text of a response with its {slots} as wildcards."""
    texts = [str(variant["text"]) for variant in DOMAIN["responses"][response]]
    parts = [re.split(r"\{\w+\}", text) for text in texts]
    return [re.compile(".*?".join(re.escape(p) for p in part), re.S) for part in parts]


def said(replies: list[dict[str, Any]], response: str) -> bool:
    return any(p.fullmatch(r.get("text", "")) for p in patterns(response) for r in replies)


@contextmanager
def crm(system: System) -> Iterator[Any]:
    engine = make_engine(f"sqlite:///{system.var_dir / 'crm.db'}")
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def sms_code(system: System, masked: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        codes = re.findall(
            rf"one-time code (\d{{6}}) to {re.escape(masked)}", system.log.read_text()
        )
        if codes:
            return codes[-1]
        time.sleep(0.2)
    raise AssertionError(f"no SMS stub line for {masked} in {system.log}")


def test_the_demo_login_is_greeted_by_name_and_gets_its_parcel(system: System) -> None:
    # a new session (other tests, the browser's among them, chat as "demo" too)
    welcome = system.say("demo", "/session_start")
    assert said(welcome, "utter_welcome_back") and "王小明" in welcome[0]["text"]
    replies = system.say("demo", f"我的订单{DEMO_ORDER}到哪了")
    text = " ".join(r.get("text", "") for r in replies)
    assert DEMO_ORDER in text and "已发货" in text
    assert said(replies, "utter_order_shipping")


def test_another_customers_order_is_never_described(system: System) -> None:
    replies = system.say("demo_lunar", f"查一下订单{DEMO_ORDER}")
    assert said(replies, "utter_order_not_found")
    assert "空气炸锅" not in str(replies)


def test_an_anonymous_customer_identifies_with_a_code_and_gets_the_answer(system: System) -> None:
    sender = f"web-{uuid.uuid4().hex}"
    assert said(system.say(sender, "我还有多少积分"), "utter_ask_identify_phone")
    assert said(system.say(sender, "12345"), "utter_identify_phone_invalid")
    asked = system.say(sender, "13800138001")
    assert said(asked, "utter_ask_otp_code") and "138****8001" in str(asked)

    replies = system.say(sender, sms_code(system, "138****8001"))

    assert said(replies, "utter_identified") and "李娜" in str(replies)
    assert said(replies, "utter_points_balance_personal") and "银卡" in str(replies)
    with crm(system) as session:
        # the back end's user `sender` is now known as this member (a REST conversation)
        linked = find_customer_by_identity(session, kind="rest_user", value=sender)
    assert linked is not None and linked.name == "李娜"


def test_points_are_redeemed_once_after_confirmation(system: System) -> None:
    sender = "demo"
    with crm(system) as session:
        before = session.scalars(select(PointsEntry).where(PointsEntry.customer_id == 1)).all()
    assert said(system.say(sender, "我想用积分兑换"), "utter_ask_points_amount")
    again = system.say(sender, "abc")  # not an amount: asked again, whatever else is said
    assert said(again, "utter_points_amount_invalid") or said(again, "utter_ask_points_amount")
    assert said(system.say(sender, "300"), "utter_ask_redeem_confirmed")
    assert said(system.say(sender, "确认"), "utter_redeemed")

    with crm(system) as session:
        after = session.scalars(select(PointsEntry).where(PointsEntry.customer_id == 1)).all()
    new = [e for e in after if e.id not in {b.id for b in before}]
    assert [(e.kind, e.delta) for e in new] == [("redeem", -300)]
    # written under the id the form gave this redemption (issue 18): a retry spends it once
    assert re.fullmatch(r"redeem:[0-9a-f]{32}", new[0].idempotency_key or "")


def test_every_turn_lands_in_the_crm_once(system: System) -> None:
    sender = f"web-{uuid.uuid4().hex}"
    for message in ("你好", "你们开发票吗", "谢谢"):
        system.say(sender, message)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with crm(system) as session:
            turns = list_interactions(session, conversation_id=f"rest:{sender}")
        if sum(t.speaker == "customer" for t in turns) == 3 and turns[-1].speaker == "bot":
            break
        time.sleep(0.3)
    customer = [t for t in turns if t.speaker == "customer"]
    assert [t.text for t in customer] == ["你好", "你们开发票吗", "谢谢"]
    assert [t.intent for t in customer] == ["greet", "faq", "thank"]
    assert all(t.channel == "web" and t.confidence for t in customer)
    assert sum(t.speaker == "bot" for t in turns) >= 3


def _action_server_pid(system: System) -> int:
    for pid in children_of(system.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"bot.action_server" in cmdline:
            return pid
    raise AssertionError("no action server among the children of carebot run")


def test_a_stalled_action_server_gets_an_apology_and_the_bot_recovers(system: System) -> None:
    pid = _action_server_pid(system)
    os.kill(pid, signal.SIGSTOP)
    try:
        replies = system.say("demo", "我的积分还有多少")
    finally:
        os.kill(pid, signal.SIGCONT)
    assert said(replies, "utter_service_unavailable")
    assert "action action_points_balance failed" in system.log.read_text()

    assert said(system.say("demo", "积分还剩多少"), "utter_points_balance_personal")


def test_a_win_back_offer_is_sent_and_its_coupon_used_in_the_dialogue(system: System) -> None:
    sender = f"u{uuid.uuid4().hex[:10]}"
    with crm(system) as session:
        customer = create_customer(
            session, name="周芷若", phone=f"137{uuid.uuid4().int % 10**8:08d}"
        )
        link_identity(session, customer_id=customer.id, kind="rest_user", value=sender)
        now = datetime.now(timezone.utc)
        period = half_year_period(now.date())
        coupon = a_win_back_coupon(session, customer.id, period, now)
        message, _ = enqueue_care_message(
            session,
            customer_id=customer.id,
            campaign_key="win_back",
            period=period,
            channel="web",
        )
    body = {"name": "EXTERNAL_care_message", "entities": {"care_message_id": message.id}}
    conversation = f"rest:{sender}"  # the REST sender's conversation, where the customer answers
    status, answer = system.post(f"/conversations/{conversation}/trigger_intent", body, token=True)
    assert status == 200, answer
    [offered] = [m for m in answer["messages"] if coupon.code in m.get("text", "")]
    assert "周芷若" in offered["text"] and offered["buttons"][0]["title"] == "用这张券"

    again = system.post(f"/conversations/{conversation}/trigger_intent", body, token=True)[1]
    assert not [m for m in again["messages"] if coupon.code in m.get("text", "")]  # once

    with crm(system) as session:
        order = create_order(session, customer_id=customer.id, items=[NewItem("BL-500")])
    replies = system.say(sender, offered["buttons"][0]["payload"])
    assert said(replies, "utter_coupon_applied") and order.id in replies[0]["text"]
    with crm(system) as session:
        [used] = list_coupons(session, customer_id=customer.id)
    assert used.status == "redeemed" and used.order_id == order.id
