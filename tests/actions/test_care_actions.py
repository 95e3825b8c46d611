"""Each care action against the demo CRM: what the customer is told and what the CRM keeps."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from actions.complaints import ActionOpenComplaint
from actions.consent import ActionChangeConsent
from actions.contact import ActionUpdateContact, ValidateUpdateContactForm
from actions.fallback import ActionRephrase
from actions.faq import ActionAnswerFaq
from actions.handoff import ActionRequestHuman
from actions.identity import ValidateIdentifyForm
from actions.offers import ActionListOffers
from actions.orders import ActionNotifyOrderUpdate, ActionOrderStatus
from actions.points import ActionPointsBalance, ActionRedeemPoints, ValidateRedeemForm
from actions.resume import ActionResumeAfterIdentify
from actions.returns import ActionAskReturnItem, ActionOpenReturn, ValidateReturnForm
from actions.session import ActionGreet, ActionSessionStart
from crm_store.clock import fixed
from crm_store.customers import get_consents, get_customer
from crm_store.db import session_scope
from crm_store.handoffs import find_open_handoff
from crm_store.identities import find_customer_by_identity
from crm_store.offers import create_offer
from crm_store.orders import (
    NewItem,
    add_shipping_event,
    create_order,
    list_orders,
    set_order_status,
)
from crm_store.points import points_balance
from crm_store.tickets import list_tickets
from tests.actions.helpers import (
    DOMAIN,
    LI,
    NOW,
    WANG,
    Run,
    identified,
    responses,
    slots_set,
    tracker,
)

DEMO_ORDER = "DD202611020387"


def test_a_new_session_recognises_the_demo_login_and_mentions_the_parcel(run: Run) -> None:
    messages, events = run(ActionSessionStart(), tracker(sender="demo"))

    assert events[0]["event"] == "session_started" and events[-1]["name"] == "action_listen"
    assert slots_set(events)["customer_id"] == WANG and slots_set(events)["identified"] is True
    assert responses(messages)[:1] == ["utter_welcome_back"] and messages[0]["name"] == "王小明"
    assert "utter_pending_parcel" in responses(messages)


def test_a_wechat_openid_identifies_only_on_the_wechat_channel(run: Run) -> None:
    wechat = tracker(
        sender="o_demo_openid", slots={"session_started_metadata": {"channel": "wechat"}}
    )
    web = tracker(sender="o_demo_openid")

    assert slots_set(run(ActionSessionStart(), wechat)[1]).get("customer_id") == WANG
    messages, events = run(ActionSessionStart(), web)
    assert "customer_id" not in slots_set(events) and messages == []


def _session_welcome(*later: dict[str, Any]) -> list[dict[str, Any]]:
    welcome = {
        "event": "bot",
        "text": "王小明，欢迎回来！",
        "metadata": {"utter_action": "utter_welcome_back"},
    }
    return [{"event": "session_started"}, welcome, *later]  # tracker() adds the user message


def test_a_greeting_right_after_the_welcome_is_not_welcomed_twice(run: Run) -> None:
    # the WeChat follow: the session start welcomed him, then "/greet" arrives
    state = tracker(sender="demo", slots=identified(WANG), events=_session_welcome())
    assert run(ActionGreet(), state)[0] == []


def test_a_greeting_later_in_the_session_is_welcomed_by_name(run: Run) -> None:
    earlier = [{"event": "user", "text": "查订单"}, {"event": "bot", "text": "订单……"}]
    state = tracker(sender="demo", slots=identified(WANG), events=_session_welcome(*earlier))
    messages, _ = run(ActionGreet(), state)
    assert responses(messages) == ["utter_welcome_back"]
    assert responses(run(ActionGreet(), tracker())[0]) == ["utter_greet"]


def _ask_code(run: Run, caplog: pytest.LogCaptureFixture) -> tuple[dict, str]:
    state = tracker(
        sender="web-abc",
        slots={"requested_slot": "identify_phone"},
        extracted={"identify_phone": "我的手机 138 0013 8000"},
        active_loop="identify_form",
    )
    with caplog.at_level(logging.WARNING, logger="carebot.sms_stub"):
        _, events = run(ValidateIdentifyForm(), state)
    code = re.search(r"code (\d{6})", caplog.text)
    assert code is not None, "the SMS stub logs the code"
    return slots_set(events), code.group(1)


def test_identification_by_phone_and_one_time_code(
    run: Run, crm, caplog: pytest.LogCaptureFixture
) -> None:
    slots, code = _ask_code(run, caplog)
    assert slots["identify_phone"] == "138****8000" and code not in str(slots)

    answer = tracker(
        sender="web-abc",
        slots={**slots, "requested_slot": "otp_code"},
        extracted={"otp_code": f"验证码 {code}"},
        active_loop="identify_form",
    )
    messages, events = run(ValidateIdentifyForm(), answer)

    assert slots_set(events)["customer_id"] == WANG and responses(messages) == ["utter_identified"]
    with session_scope(crm) as session:
        linked = find_customer_by_identity(session, kind="web_session", value="web-abc")
    assert linked is not None and linked.id == WANG


def test_a_wrong_code_is_asked_again_and_three_wrong_codes_void_it(
    run: Run, caplog: pytest.LogCaptureFixture
) -> None:
    slots, code = _ask_code(run, caplog)
    wrong = "000000" if code != "000000" else "111111"
    said = []
    for _ in range(3):
        state = tracker(
            sender="web-abc",
            slots={**slots, "requested_slot": "otp_code"},
            extracted={"otp_code": wrong},
            active_loop="identify_form",
        )
        messages, events = run(ValidateIdentifyForm(), state)
        said += responses(messages)
        slots = {**slots, **slots_set(events)}
    assert said == ["utter_otp_wrong", "utter_otp_wrong", "utter_otp_locked"]
    assert slots["identify_phone"] is None and "customer_id" not in slots
    assert slots["requested_slot"] is None  # the form ends: "try later"


def test_a_malformed_phone_is_asked_again(run: Run) -> None:
    # an unknown number is not: it "gets a code" like a member's (tests/actions/test_otp_actions)
    state = tracker(
        slots={"requested_slot": "identify_phone"},
        extracted={"identify_phone": "12345"},
        active_loop="identify_form",
    )
    messages, events = run(ValidateIdentifyForm(), state)
    assert responses(messages) == ["utter_identify_phone_invalid"]
    assert slots_set(events)["identify_phone"] is None


def test_order_status_tells_status_carrier_latest_event_and_delivery(run: Run) -> None:
    state = tracker(slots={**identified(WANG), "order_id": DEMO_ORDER}, intent="order_status")
    messages, events = run(ActionOrderStatus(), state)

    assert responses(messages) == ["utter_order_status", "utter_order_shipping"]
    assert messages[0]["status"] == "已发货" and "空气炸锅" in messages[0]["items"]
    assert messages[1]["carrier"] in ("顺丰速运", "京东物流", "中通快递")
    assert "广州转运中心" in messages[1]["event"] and messages[1]["eta"].endswith("日")
    assert slots_set(events) == {"order_id": None}


def test_another_customers_order_is_not_found(run: Run) -> None:
    state = tracker(slots={**identified(LI), "order_id": DEMO_ORDER}, intent="order_status")
    messages, _ = run(ActionOrderStatus(), state)
    assert responses(messages) == ["utter_order_not_found"]
    assert all("空气炸锅" not in str(m) for m in messages)


def _order_update(sender: str, order_id: str, slots: dict[str, Any] | None = None) -> Any:
    entities = [{"entity": "order_id", "value": order_id}]
    return tracker(
        sender=sender,
        slots=slots,
        text="EXTERNAL: EXTERNAL_order_update",
        intent="EXTERNAL_order_update",
        entities=entities,
    )


def test_an_order_update_reaches_the_customers_own_conversation(run: Run) -> None:
    messages, _ = run(ActionNotifyOrderUpdate(), _order_update("demo", DEMO_ORDER.lower()))
    assert responses(messages) == [
        "utter_order_update",
        "utter_order_status",
        "utter_order_shipping",
    ]
    assert messages[1]["order_id"] == DEMO_ORDER


def test_an_order_update_for_an_identified_conversation(run: Run) -> None:
    state = _order_update("web-anonymous", DEMO_ORDER, identified(WANG))
    messages, _ = run(ActionNotifyOrderUpdate(), state)
    assert responses(messages)[0] == "utter_order_update"


@pytest.mark.parametrize(
    ("sender", "order_id"),
    [
        ("demo_lunar", DEMO_ORDER),
        ("web-nobody", DEMO_ORDER),
        ("demo", "DD000000000000"),
        ("demo", ""),
    ],
)
def test_an_order_update_never_goes_to_another_conversation(
    run: Run, sender: str, order_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="actions.orders"):
        messages, _ = run(ActionNotifyOrderUpdate(), _order_update(sender, order_id))
    assert messages == []
    assert "not sent" in caplog.text


def test_without_an_order_id_the_recent_orders_are_buttons(run: Run, crm) -> None:
    with session_scope(crm) as session:  # a second parcel on its way: no obvious order
        second = create_order(
            session, customer_id=WANG, items=[NewItem("KT-090")], status="shipped", clock=fixed(NOW)
        )
        add_shipping_event(session, order_id=second.id, status="picked_up", clock=fixed(NOW))
    messages, _ = run(ActionOrderStatus(), tracker(slots=identified(WANG), intent="order_status"))
    assert responses(messages) == ["utter_choose_order"]
    with session_scope(crm) as session:
        own = {o.id for o in list_orders(session, customer_id=WANG)}
    payloads = [b["payload"] for b in messages[0]["buttons"]]
    assert payloads and all(re.search(r'"order_id":"(DD\d{12})"', p)[1] in own for p in payloads)


def test_points_balance_tier_and_progress(run: Run) -> None:
    messages, _ = run(ActionPointsBalance(), tracker(slots=identified(WANG)))
    assert responses(messages)[0] == "utter_points_balance_personal"
    assert messages[0]["tier"] == "金卡" and messages[0]["balance"] > 0
    assert responses(messages)[-1] in ("utter_tier_progress", "utter_tier_top")


@pytest.mark.parametrize(
    ("amount", "said"),
    # more than the balance is "short" before "too many" (tests/actions/test_never_drop_the_ball)
    [("五十万", "utter_points_short"), ("abc", "utter_points_amount_invalid")],
)
def test_a_bad_redemption_amount_is_asked_again(run: Run, amount: str, said: str) -> None:
    state = tracker(
        slots={**identified(WANG), "requested_slot": "points_amount"},
        extracted={"points_amount": amount},
        active_loop="redeem_form",
    )
    messages, events = run(ValidateRedeemForm(), state)
    assert responses(messages) == [said] and slots_set(events)["points_amount"] is None


def test_more_points_than_the_balance_are_refused_with_the_shortfall(run: Run, crm) -> None:
    with session_scope(crm) as session:
        balance = points_balance(session, customer_id=LI)
    state = tracker(
        slots={**identified(LI), "requested_slot": "points_amount"},
        extracted={"points_amount": str(balance + 100)},
        active_loop="redeem_form",
    )
    messages, _ = run(ValidateRedeemForm(), state)
    assert responses(messages) == ["utter_points_short"] and messages[0]["shortfall"] == 100


def test_a_confirmed_redemption_is_written_once(run: Run, crm) -> None:
    with session_scope(crm) as session:
        before = points_balance(session, customer_id=WANG)
    confirmed = {**identified(WANG), "points_amount": "500", "redeem_confirmed": True}
    messages, events = run(ActionRedeemPoints(), tracker(slots=confirmed))

    with session_scope(crm) as session:
        assert points_balance(session, customer_id=WANG) == before - 500
    assert responses(messages) == ["utter_redeemed"] and messages[0]["balance"] == before - 500
    assert slots_set(events) == {
        "points_amount": None,
        "redeem_confirmed": None,
        "redemption_id": None,
    }


def test_a_declined_redemption_changes_nothing(run: Run, crm) -> None:
    with session_scope(crm) as session:
        before = points_balance(session, customer_id=WANG)
    declined = {**identified(WANG), "points_amount": "500", "redeem_confirmed": False}
    messages, _ = run(ActionRedeemPoints(), tracker(slots=declined))
    assert responses(messages) == ["utter_redeem_cancelled"]
    with session_scope(crm) as session:
        assert points_balance(session, customer_id=WANG) == before


def test_a_complaint_opens_a_ticket_with_a_priority_from_tier_and_anger(run: Run, crm) -> None:
    text = "你们的快递太慢了，气死我了，再这样我就打12315投诉"
    messages, _ = run(ActionOpenComplaint(), tracker(slots=identified(WANG), text=text))

    with session_scope(crm) as session:
        ticket = list_tickets(session, customer_id=WANG, status="open")[0]
    assert ticket.kind == "complaint" and ticket.description == text
    assert ticket.priority == "urgent"
    assert responses(messages) == ["utter_complaint_ticket"]
    assert messages[0]["ticket_id"] == ticket.id


def test_a_complaint_made_before_identification_is_the_one_recorded(run: Run, crm) -> None:
    slots = {**identified(LI), "pending_intent": "complaint", "pending_text": "东西是坏的"}
    run(ActionResumeAfterIdentify(), tracker(slots=slots, text="123456", intent="inform"))
    with session_scope(crm) as session:
        tickets = list_tickets(session, customer_id=LI, status="open")
    assert [t.description for t in tickets if t.kind == "complaint"][-1:] == ["东西是坏的"]


def test_consent_in_the_customers_words(run: Run, crm) -> None:
    state = tracker(slots=identified(WANG), text="退订优惠，保留回访", intent="unsubscribe")
    messages, _ = run(ActionChangeConsent(), state)

    with session_scope(crm) as session:
        consents = get_consents(session, customer_id=WANG)
    assert consents["offer"] is False and consents["follow_up"] is True
    assert responses(messages) == ["utter_consent_updated"]
    assert "优惠活动" in messages[0]["off"] and "回访" in messages[0]["on"]


def test_an_offer_is_claimed_once_per_customer(run: Run, crm) -> None:
    with session_scope(crm) as session:
        create_offer(
            session,
            key="test-20",
            name="满200减20",
            kind="amount_off",
            value=2000,
            valid_days=30,
            min_spend_cents=20000,
        )
    listed, _ = run(ActionListOffers(), tracker(slots=identified(WANG), intent="ask_offers"))
    assert any("test-20" in b["payload"] for b in listed[0]["buttons"])

    claim = tracker(slots={**identified(WANG), "offer_key": "test-20"}, intent="ask_offers")
    first, _ = run(ActionListOffers(), claim)
    second, _ = run(ActionListOffers(), claim)
    assert responses(first) == ["utter_coupon_issued"]
    assert responses(second) == ["utter_coupon_already"] and second[0]["code"] == first[0]["code"]


def test_the_warranty_answer_adds_the_customers_own_products(run: Run) -> None:
    selector = {"faq": {"response": {"utter_action": "utter_faq/warranty"}}}
    state = tracker(slots=identified(WANG), intent="faq", extra={"response_selector": selector})
    messages, _ = run(ActionAnswerFaq(), state)
    assert responses(messages)[0] == "utter_faq/warranty"
    assert "扫地机器人" in [m.get("product") for m in messages]


def test_an_anonymous_warranty_question_gets_the_general_answer(run: Run) -> None:
    selector = {"faq": {"response": {"utter_action": "utter_faq/warranty"}}}
    messages, _ = run(
        ActionAnswerFaq(), tracker(intent="faq", extra={"response_selector": selector})
    )
    assert responses(messages) == ["utter_faq/warranty"]


def test_the_second_miss_in_a_row_offers_a_person(run: Run) -> None:
    miss = {"event": "user", "text": "xx", "parse_data": {"intent": {"name": "nlu_fallback"}}}
    first, _ = run(ActionRephrase(), tracker(intent="nlu_fallback"))
    second, _ = run(ActionRephrase(), tracker(intent="nlu_fallback", events=[miss]))
    assert responses(first) == ["utter_please_rephrase"]
    assert responses(second) == ["utter_offer_human"]


def test_asking_for_a_person_is_recorded_once(run: Run, crm) -> None:
    state = tracker(sender="web-h", slots=identified(WANG), intent="request_human")
    run(ActionRequestHuman(), state)
    run(ActionRequestHuman(), state)
    with session_scope(crm) as session:
        handoff = find_open_handoff(session, conversation_id="web-h")
    assert handoff is not None and handoff.customer_id == WANG


def test_a_parcel_still_on_its_way_cannot_be_returned_yet(run: Run) -> None:
    state = tracker(
        slots={**identified(WANG), "requested_slot": "order_id"},
        extracted={"order_id": DEMO_ORDER},
        active_loop="return_form",
    )
    messages, events = run(ValidateReturnForm(), state)
    assert responses(messages) == ["utter_return_not_delivered"]
    assert slots_set(events)["order_id"] is None


def _delivered_order(crm: Engine, days_ago: int) -> str:
    with session_scope(crm) as session:
        placed = fixed(NOW - timedelta(days=days_ago + 3))
        order = create_order(
            session, customer_id=WANG, items=[NewItem("AF-200")], status="shipped", clock=placed
        )
        add_shipping_event(
            session,
            order_id=order.id,
            status="delivered",
            carrier="顺丰速运",
            clock=fixed(NOW - timedelta(days=days_ago)),
        )
        set_order_status(session, order_id=order.id, status="delivered")
        return order.id


def _return(run: Run, order_id: str, reason: str) -> list[dict[str, Any]]:
    slots = {
        **identified(WANG),
        "order_id": order_id,
        "return_item": "空气炸锅",
        "return_reason": reason,
    }
    messages, events = run(ActionOpenReturn(), tracker(slots=slots))
    assert slots_set(events) == {"order_id": None, "return_item": None, "return_reason": None}
    return messages


def test_a_delivered_order_inside_the_window_opens_a_return_ticket(run: Run, crm: Engine) -> None:
    order_id = _delivered_order(crm, days_ago=3)
    messages = _return(run, order_id, "不想要了")

    assert responses(messages) == ["utter_return_ticket"]
    with session_scope(crm) as session:
        ticket = list_tickets(session, customer_id=WANG, status="open")[0]
    assert ticket.kind == "return" and ticket.order_id == order_id
    assert messages[0]["ticket_id"] == ticket.id


def test_the_return_window_is_longer_for_a_fault(run: Run, crm: Engine) -> None:
    order_id = _delivered_order(crm, days_ago=10)
    assert responses(_return(run, order_id, "不想要了")) == ["utter_return_expired"]
    assert responses(_return(run, order_id, "用了一次就坏了，不加热")) == ["utter_return_ticket"]


def test_a_bad_new_phone_is_asked_again(run: Run) -> None:
    # another member's number gets a code too: "taken" only once it is proved (test_otp_actions)
    state = tracker(
        slots={**identified(WANG), "requested_slot": "new_phone"},
        extracted={"new_phone": "1380013800"},
        active_loop="update_contact_form",
    )
    messages, events = run(ValidateUpdateContactForm(), state)
    assert responses(messages) == ["utter_new_phone_invalid"]
    assert slots_set(events)["new_phone"] is None


def test_a_confirmed_new_phone_is_saved_once_its_code_was_answered(
    run: Run, crm, caplog: pytest.LogCaptureFixture
) -> None:
    asked = tracker(
        slots={**identified(WANG), "requested_slot": "new_phone"},
        extracted={"new_phone": "139 1234 5678"},
        active_loop="update_contact_form",
    )
    slots = {**identified(WANG), **slots_set(run(ValidateUpdateContactForm(), asked)[1])}
    code = re.findall(r"one-time code (\d{6}) to 139\*\*\*\*5678", caplog.text)[-1]
    answered = tracker(
        slots={**slots, "requested_slot": "contact_code"},
        extracted={"contact_code": code},
        active_loop="update_contact_form",
    )
    slots.update(slots_set(run(ValidateUpdateContactForm(), answered)[1]))
    assert slots["contact_code"] == "verified"

    messages, _ = run(ActionUpdateContact(), tracker(slots={**slots, "contact_confirmed": True}))
    with session_scope(crm) as session:
        assert get_customer(session, customer_id=WANG).phone == "13912345678"
    assert responses(messages) == ["utter_contact_updated"]
    assert messages[0]["masked_phone"] == "139****5678"


def test_a_dead_database_gets_an_apology_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    action = ActionPointsBalance()
    action.engine = create_engine("postgresql://nobody@127.0.0.1:9/none", future=True)
    dispatcher = CollectingDispatcher()
    with caplog.at_level(logging.ERROR):
        events = asyncio.run(action.run(dispatcher, tracker(slots=identified(WANG)), DOMAIN))
    assert events == [] and responses(dispatcher.messages) == ["utter_service_unavailable"]
    assert "CRM database unavailable" in caplog.text


def test_a_person_asked_for_right_after_a_complaint_is_queued_as_a_complaint(
    run: Run, crm: Engine
) -> None:
    complained = {
        "event": "user",
        "text": "太差了",
        "parse_data": {"intent": {"name": "complaint"}},
    }
    state = tracker(
        sender="web-h2", slots=identified(WANG), intent="request_human", events=[complained]
    )
    run(ActionRequestHuman(), state)
    with session_scope(crm) as session:
        handoff = find_open_handoff(session, conversation_id="web-h2")
    assert handoff is not None and handoff.reason == "complaint"


def test_points_spent_elsewhere_before_the_confirmation_are_not_overdrawn(
    run: Run, crm: Engine
) -> None:
    """The amount passed validation, then the balance fell (another channel redeemed)."""
    with session_scope(crm) as session:
        balance = points_balance(session, customer_id=LI)
    confirmed = {**identified(LI), "points_amount": str(balance + 1), "redeem_confirmed": True}
    messages, events = run(ActionRedeemPoints(), tracker(slots=confirmed))

    assert responses(messages) == ["utter_points_short"] and messages[0]["shortfall"] == 1
    assert slots_set(events) == {
        "points_amount": None,
        "redeem_confirmed": None,
        "redemption_id": None,
    }
    with session_scope(crm) as session:
        assert points_balance(session, customer_id=LI) == balance


def test_an_item_not_in_the_order_is_asked_again(run: Run) -> None:
    state = tracker(
        slots={**identified(WANG), "order_id": DEMO_ORDER, "requested_slot": "return_item"},
        extracted={"return_item": "洗衣机"},
        active_loop="return_form",
    )
    messages, events = run(ValidateReturnForm(), state)
    assert responses(messages) == ["utter_return_item_unknown"]
    assert slots_set(events)["return_item"] is None and messages[0]["item"] == "洗衣机"
    asked, _ = run(ActionAskReturnItem(), state)  # the form asks again, naming the order's items
    assert responses(asked) == ["utter_ask_return_item"] and "空气炸锅" in asked[0]["items"]


def test_an_unknown_offer_cannot_be_claimed(run: Run) -> None:
    claim = tracker(slots={**identified(WANG), "offer_key": "no-such-offer"}, intent="ask_offers")
    messages, events = run(ActionListOffers(), claim)
    assert responses(messages) == ["utter_offer_unavailable"]
    assert slots_set(events) == {"offer_key": None}
