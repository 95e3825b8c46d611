"""Proactive care messages and coupon use, on the demo CRM (tests/actions/conftest.py)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.engine import Engine

from actions.campaign_messages import ActionSendCareMessage
from actions.coupons import ActionUseCoupon
from crm_store.campaigns.rules import BIRTHDAY_GIFTS
from crm_store.clock import fixed
from crm_store.db import session_scope
from crm_store.deliveries import find_delivery
from crm_store.offers import list_coupons
from crm_store.orders import NewItem, create_order, list_warranties
from crm_store.outbox import enqueue_care_message
from crm_store.points import earn_points, points_balance
from tests.actions.helpers import DOMAIN, LI, NOW, WANG, Run, identified, responses, tracker
from tests.care_helpers import a_birthday_coupon, a_campaign, a_win_back_coupon


def a_care_message(crm: Engine, customer_id: int, key: str, period: str) -> int:
    with session_scope(crm) as session:
        a_campaign(session, key, NOW)
        message, _ = enqueue_care_message(
            session,
            customer_id=customer_id,
            campaign_key=key,
            period=period,
            channel="web",
            clock=fixed(NOW),
        )
        return message.id


def trigger(message_id: int, sender: str = "demo", events: list[Any] | None = None) -> Any:
    entities = [{"entity": "care_message_id", "value": str(message_id)}]
    return tracker(
        sender=sender,
        text="EXTERNAL: EXTERNAL_care_message",  # what trigger_intent records
        intent="EXTERNAL_care_message",
        entities=entities,
        events=events,
    )


def test_a_birthday_greeting_credits_the_tiers_points_once(run: Run, crm: Engine) -> None:
    message_id = a_care_message(crm, LI, "birthday", "2026")  # 李娜, 银卡: a gift in points
    with session_scope(crm) as session:
        before = points_balance(session, customer_id=LI)
    messages, _ = run(ActionSendCareMessage(), trigger(message_id, sender="demo_lunar"))
    assert responses(messages) == ["utter_care_birthday"]
    assert messages[0]["name"] == "李娜" and messages[0]["points"] == BIRTHDAY_GIFTS["银卡"].value
    # a retry that lands on another channel: delivered before, so nothing is said or credited
    assert run(ActionSendCareMessage(), trigger(message_id, sender="o_demo_lunar"))[0] == []
    with session_scope(crm) as session:
        assert points_balance(session, customer_id=LI) == before + BIRTHDAY_GIFTS["银卡"].value


def test_a_birthday_gift_credited_before_the_greeting_is_not_credited_again(
    run: Run, crm: Engine
) -> None:
    """Another path credited the year's gift first (a greeting delivered before migration
    0017, a concurrent path): the ledger's key for the year makes the greeting credit nothing."""
    first = a_care_message(crm, LI, "birthday", "2026")
    with session_scope(crm) as session:
        before = points_balance(session, customer_id=LI)
    with session_scope(crm) as session:
        earn_points(
            session,
            customer_id=LI,
            points=BIRTHDAY_GIFTS["银卡"].value,
            reason="birthday_gift:2026",
            idempotency_key="birthday_gift:2026",
            clock=fixed(NOW),
        )
    messages, _ = run(ActionSendCareMessage(), trigger(first, sender="demo_lunar"))
    assert responses(messages) == ["utter_care_birthday"]  # the greeting still goes out
    with session_scope(crm) as session:
        assert points_balance(session, customer_id=LI) == before + BIRTHDAY_GIFTS["银卡"].value


def test_concurrent_triggers_in_two_conversations_greet_and_credit_once(
    crm: Engine,
) -> None:
    """A retry racing the first trigger (a second dispatcher, a reclaimed claim): both run the
    action at the same moment, in the member's web and WeChat conversations."""
    message_id = a_care_message(crm, LI, "birthday", "2026")
    with session_scope(crm) as session:
        before = points_balance(session, customer_id=LI)
    barrier = threading.Barrier(2)

    def deliver(sender: str) -> list[str]:
        action = ActionSendCareMessage()
        action.engine, action.clock = crm, fixed(NOW)
        dispatcher = CollectingDispatcher()
        barrier.wait(10)
        action.run_in_transaction(dispatcher, trigger(message_id, sender=sender), DOMAIN)
        return responses(dispatcher.messages)

    with ThreadPoolExecutor(2) as pool:
        said = list(pool.map(deliver, ["demo_lunar", "o_demo_lunar"]))
    assert sorted(said) == [[], ["utter_care_birthday"]]
    with session_scope(crm) as session:
        assert points_balance(session, customer_id=LI) == before + BIRTHDAY_GIFTS["银卡"].value


def test_a_gold_members_birthday_gift_is_the_coupon_planned_with_it(run: Run, crm: Engine) -> None:
    message_id = a_care_message(crm, WANG, "birthday", "2026")
    with session_scope(crm) as session:
        coupon = a_birthday_coupon(session, WANG, "金卡", "2026", NOW)
    messages, _ = run(ActionSendCareMessage(), trigger(message_id))
    assert responses(messages) == ["utter_care_birthday_coupon"]
    assert messages[0]["code"] == coupon.code and messages[0]["value"] == "50元"


def test_a_holiday_greeting_names_the_holiday(run: Run, crm: Engine) -> None:
    message_id = a_care_message(crm, WANG, "holiday", "2026-mid_autumn")
    messages, _ = run(ActionSendCareMessage(), trigger(message_id))
    assert responses(messages) == ["utter_care_holiday"] and messages[0]["holiday"] == "中秋节"


def test_a_follow_up_asks_about_the_latest_purchase(run: Run, crm: Engine) -> None:
    message_id = a_care_message(crm, WANG, "follow_up", "2026-11")
    messages, _ = run(ActionSendCareMessage(), trigger(message_id))
    assert responses(messages) == ["utter_care_follow_up"]
    assert "空气炸锅" in messages[0]["product"]


def test_a_care_tip_is_for_the_product_family(run: Run, crm: Engine) -> None:
    kettle = a_care_message(crm, WANG, "care_tip", "KT-090-2026-11")
    unknown = a_care_message(crm, WANG, "care_tip", "ZZ-001-2026-11")
    assert responses(run(ActionSendCareMessage(), trigger(kettle))[0]) == ["utter_care_tip_kt"]
    assert responses(run(ActionSendCareMessage(), trigger(unknown))[0]) == [
        "utter_care_tip_generic"
    ]


def test_a_warranty_reminder_names_the_product_and_the_end_date(run: Run, crm: Engine) -> None:
    with session_scope(crm) as session:
        robot = next(w for w in list_warranties(session, customer_id=WANG) if w.sku == "RV-700")
    message_id = a_care_message(crm, WANG, "warranty_reminder", f"{robot.order_id}-RV-700")
    messages, _ = run(ActionSendCareMessage(), trigger(message_id))
    assert responses(messages) == ["utter_care_warranty_reminder"]
    assert messages[0]["product"] == "扫地机器人"
    assert (
        messages[0]["ends_on"]
        == f"{robot.ends_on.year}年{robot.ends_on.month}月{robot.ends_on.day}日"
    )


def _win_back_coupon(crm: Engine, customer_id: int) -> tuple[int, str]:
    message_id = a_care_message(crm, customer_id, "win_back", "2026-H2")
    with session_scope(crm) as session:
        coupon = a_win_back_coupon(session, customer_id, "2026-H2", NOW)
    return message_id, coupon.code


def test_a_win_back_message_carries_the_coupon_and_a_button_to_use_it(
    run: Run, crm: Engine
) -> None:
    message_id, code = _win_back_coupon(crm, LI)
    messages, _ = run(ActionSendCareMessage(), trigger(message_id, sender="demo_lunar"))
    assert responses(messages) == ["utter_care_win_back"]
    assert messages[0]["code"] == code and messages[0]["value"].endswith(("元", "折"))


def test_a_retry_in_a_later_session_or_another_conversation_says_nothing(
    run: Run, crm: Engine
) -> None:
    """The conversation's history cannot tell: a new session starts without the earlier
    trigger, another conversation never had it. The delivery recorded in the CRM can."""
    message_id = a_care_message(crm, WANG, "holiday", "2026-national_day")
    assert responses(run(ActionSendCareMessage(), trigger(message_id))[0]) == ["utter_care_holiday"]
    for sender in ("demo", "o_demo_openid"):
        assert run(ActionSendCareMessage(), trigger(message_id, sender=sender))[0] == []
    with session_scope(crm) as session:
        delivery = find_delivery(session, care_message_id=message_id)
    assert delivery is not None and (delivery.conversation_id, delivery.channel) == ("demo", "web")


def test_a_re_trigger_after_a_crash_sends_nothing_twice(run: Run, crm: Engine) -> None:
    message_id = a_care_message(crm, WANG, "holiday", "2026-national_day")
    earlier = trigger(message_id).events  # the first trigger, as the tracker recorded it
    answered = [*earlier, {"event": "bot", "text": "国庆节快乐"}]
    messages, _ = run(ActionSendCareMessage(), trigger(message_id, events=answered))
    assert messages == []
    unanswered = list(earlier)  # the first trigger's answer never made it into the tracker
    assert responses(run(ActionSendCareMessage(), trigger(message_id, events=unanswered))[0])


@pytest.mark.parametrize("sender", ["demo_lunar", "web-somebody", "o_demo_lunar"])
def test_a_care_message_never_reaches_another_customers_conversation(
    run: Run, crm: Engine, sender: str, caplog: pytest.LogCaptureFixture
) -> None:
    message_id = a_care_message(crm, WANG, "holiday", "2026-qixi")
    with caplog.at_level(logging.WARNING, logger="actions.campaign_messages"):
        assert run(ActionSendCareMessage(), trigger(message_id, sender=sender))[0] == []
    assert "not that customer's conversation" in caplog.text


@pytest.mark.parametrize("entities", [[], [{"entity": "care_message_id", "value": "x"}]])
def test_a_trigger_without_a_usable_id_or_row_sends_nothing(
    run: Run, entities: list[dict[str, Any]]
) -> None:
    state = tracker(
        sender="demo",
        text="EXTERNAL: EXTERNAL_care_message",
        intent="EXTERNAL_care_message",
        entities=entities,
    )
    assert run(ActionSendCareMessage(), state)[0] == []
    assert run(ActionSendCareMessage(), trigger(999_999))[0] == []


def _use(run: Run, text: str, code: str | None = None) -> list[dict[str, Any]]:
    slots = {**identified(LI), "coupon_code": code}
    return run(
        ActionUseCoupon(), tracker(sender="demo_lunar", slots=slots, text=text, intent="use_coupon")
    )[0]


def test_a_coupon_without_an_open_order_is_kept_for_the_next_one(run: Run, crm: Engine) -> None:
    _, code = _win_back_coupon(crm, LI)
    messages = _use(run, "用这张券", code)
    assert responses(messages) == ["utter_coupon_kept"] and messages[0]["code"] == code


def test_a_coupon_takes_money_off_the_open_order(run: Run, crm: Engine) -> None:
    _, code = _win_back_coupon(crm, LI)
    with session_scope(crm) as session:
        order = create_order(
            session,
            customer_id=LI,
            items=[NewItem("BL-500")],
            clock=fixed(NOW + timedelta(hours=1)),
        )
    messages = _use(run, f"用券 {code.lower()}")
    assert responses(messages) == ["utter_coupon_applied"]
    assert messages[0]["order_id"] == order.id and float(messages[0]["yuan"]) > 0
    with session_scope(crm) as session:
        [used] = [c for c in list_coupons(session, customer_id=LI) if c.code == code]
    assert used.status == "redeemed" and used.order_id == order.id
    assert responses(_use(run, "再用一次", code)) == ["utter_coupon_not_usable"]


def test_someone_elses_coupon_code_is_not_usable(run: Run, crm: Engine) -> None:
    _, wangs_code = _win_back_coupon(crm, WANG)
    assert responses(_use(run, f"用券 {wangs_code}")) == ["utter_coupon_not_usable"]


def test_a_customer_typing_the_trigger_gets_nothing(run: Run, crm: Engine) -> None:
    message_id = a_care_message(crm, WANG, "holiday", "2026-new_year")
    typed = tracker(
        sender="demo",
        text=f'/EXTERNAL_care_message{{"care_message_id": "{message_id}"}}',
        intent="EXTERNAL_care_message",
        entities=[{"entity": "care_message_id", "value": str(message_id)}],
    )
    assert run(ActionSendCareMessage(), typed)[0] == []


def test_a_new_wechat_conversation_of_the_customer_gets_it_and_is_recognised(
    run: Run, crm: Engine
) -> None:
    # trigger_intent into a conversation without a user turn: no input channel to go by
    message_id = a_care_message(crm, WANG, "holiday", "2026-spring_festival")
    messages, events = run(ActionSendCareMessage(), trigger(message_id, sender="o_demo_openid"))
    assert responses(messages) == ["utter_care_holiday"]
    assert {e["name"]: e["value"] for e in events if e["event"] == "slot"}["customer_id"] == WANG
    with session_scope(crm) as session:
        delivery = find_delivery(session, care_message_id=message_id)
    assert delivery is not None and delivery.channel == "wechat"  # the row was planned for web
