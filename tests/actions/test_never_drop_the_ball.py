"""Issue 16, "Conversations that never drop the ball": each defect as a class, against the demo
CRM at injected dates: what the customer is told, and what the CRM then holds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from actions.choices import ActionAskWhichChoice
from actions.complaints import ActionOpenComplaint
from actions.consent import ActionChangeConsent
from actions.contact import ActionAskContactCode
from actions.fallback import ActionRephrase
from actions.forms import ActionStopForm
from actions.handoff import ActionAnswerYes
from actions.identity import ActionAskOtpCode
from actions.offers import ActionListOffers
from actions.orders import ActionOrderStatus
from actions.points import ActionPointsBalance, ActionRedeemPoints, ValidateRedeemForm
from actions.returns import ActionAskReturnItem, ActionStopReturnForm, ValidateReturnForm
from actions.session import ActionGreet, ActionSessionStart
from crm_store.clock import fixed
from crm_store.customers import create_customer, get_consents
from crm_store.db import session_scope
from crm_store.handoffs import find_open_handoff
from crm_store.offers import list_coupons, list_offers
from crm_store.orders import NewItem, add_shipping_event, create_order, list_orders
from crm_store.points import (
    POINTS_VALID_DAYS,
    earn_points,
    expire_points,
    list_points_entries,
    points_balance,
    redeem_points,
)
from crm_store.tickets import list_tickets, open_ticket, set_ticket_status
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


def a_member(crm: Engine, *, earned: Sequence[tuple[datetime, int]] = ()) -> int:
    """A member with nothing but the given earnings (when, points) in the ledger."""
    with session_scope(crm) as session:
        customer = create_customer(session, name="赵敏", clock=fixed(NOW - timedelta(days=400)))
        for moment, points in earned:
            earn_points(
                session, customer_id=customer.id, points=points, reason="order", clock=fixed(moment)
            )
        return customer.id


def ledger(crm: Engine, customer_id: int) -> tuple[int, list[tuple[str, int]]]:
    with session_scope(crm) as session:
        entries = list_points_entries(session, customer_id=customer_id)
        return points_balance(session, customer_id=customer_id), [
            (e.kind, e.delta) for e in entries
        ]


# --- 1. a redemption the balance cannot cover is refused up front ----------------------------


def redeem_request(customer_id: int, text: str, **more: Any) -> Any:
    """The first run of validate_redeem_form, as Rasa sends it when the form activates."""
    return tracker(
        slots=identified(customer_id),
        text=text,
        intent="redeem_points",
        active_loop="redeem_form",
        **more,
    )


def test_an_amount_in_the_first_message_beyond_the_balance_is_refused_at_once(
    run: Run, crm: Engine
) -> None:
    member = a_member(crm, earned=[(NOW - timedelta(days=10), 300)])
    messages, events = run(ValidateRedeemForm(), redeem_request(member, "我要兑换50000积分"))

    assert responses(messages) == ["utter_points_short"]
    assert (messages[0]["balance"], messages[0]["shortfall"]) == (300, 49_700)
    assert slots_set(events)["points_amount"] is None  # asked again, never "确认用 50000 积分…？"
    assert ledger(crm, member) == (300, [("earn", 300)])


def test_an_amount_in_the_first_message_within_the_balance_goes_to_the_confirmation(
    run: Run, crm: Engine
) -> None:
    member = a_member(crm, earned=[(NOW - timedelta(days=10), 800)])
    messages, events = run(ValidateRedeemForm(), redeem_request(member, "兑换五百积分"))
    assert messages == [] and slots_set(events)["points_amount"] == "500"


def test_an_absurd_first_amount_is_validated_like_a_later_answer(run: Run, crm: Engine) -> None:
    member = a_member(crm, earned=[(NOW - timedelta(days=10), 800)])
    messages, events = run(ValidateRedeemForm(), redeem_request(member, "兑换0积分"))
    assert responses(messages) == ["utter_points_amount_invalid"]
    assert slots_set(events)["points_amount"] is None


def test_a_member_without_points_hears_it_at_once_and_the_form_ends(run: Run, crm: Engine) -> None:
    member = a_member(crm)
    messages, events = run(ValidateRedeemForm(), redeem_request(member, "我想用积分兑换优惠券"))

    assert responses(messages) == ["utter_points_none"] and messages[0]["balance"] == 0
    assert slots_set(events)["requested_slot"] is None  # no "how many?" for nothing
    said, _ = run(ActionRedeemPoints(), tracker(slots=identified(member)))
    assert said == []  # the form's end adds no "已取消兑换"
    assert ledger(crm, member) == (0, [])


def test_after_identification_the_amount_comes_from_the_request_not_the_code(
    run: Run, crm: Engine
) -> None:
    """The form starts after the one-time code: its six digits are no amount."""
    member = a_member(crm, earned=[(NOW - timedelta(days=10), 300)])
    request = {
        "event": "user",
        "text": "兑换2000积分",
        "parse_data": {"intent": {"name": "redeem_points"}},
    }
    state = tracker(
        slots=identified(member),
        text="482913",
        intent="inform",
        events=[request],
        active_loop="redeem_form",
    )
    messages, _ = run(ValidateRedeemForm(), state)
    assert responses(messages) == ["utter_points_short"] and messages[0]["shortfall"] == 1700


def test_more_than_the_cap_and_the_balance_names_the_balance(run: Run, crm: Engine) -> None:
    member = a_member(crm, earned=[(NOW - timedelta(days=10), 300)])
    messages, _ = run(ValidateRedeemForm(), redeem_request(member, "兑换五十万积分"))
    assert responses(messages) == ["utter_points_short"] and messages[0]["balance"] == 300


def test_within_the_balance_the_cap_still_holds(run: Run, crm: Engine) -> None:
    member = a_member(crm, earned=[(NOW - timedelta(days=10), 150_000)])
    messages, events = run(ValidateRedeemForm(), redeem_request(member, "兑换十二万积分"))
    assert responses(messages) == ["utter_points_too_many"]
    assert slots_set(events)["points_amount"] is None


# --- 2. dates the data says ------------------------------------------------------------------


def test_the_expiry_date_is_the_ledgers_not_thirty_days_from_today(run: Run, crm: Engine) -> None:
    # earned 355 days ago: the ledger says they expire in 10 days (11-30 Shanghai), not 12-20
    earned_at = NOW - timedelta(days=POINTS_VALID_DAYS - 10)
    member = a_member(crm, earned=[(earned_at, 400), (NOW - timedelta(days=5), 200)])

    messages, _ = run(ActionPointsBalance(), tracker(slots=identified(member)))

    expiring = [m for m in messages if m["response"] == "utter_points_expiring"]
    assert [(m["points"], m["date"]) for m in expiring] == [(400, "11月30日")]
    assert messages[0]["balance"] == 600


def test_points_spent_first_come_off_the_oldest_batch_and_each_day_is_named(
    run: Run, crm: Engine
) -> None:
    member = a_member(
        crm,
        earned=[
            (NOW - timedelta(days=POINTS_VALID_DAYS - 3), 100),
            (NOW - timedelta(days=POINTS_VALID_DAYS - 20), 250),
            (NOW - timedelta(days=POINTS_VALID_DAYS - 60), 500),
        ],
    )
    with session_scope(crm) as session:
        redeem_points(session, customer_id=member, points=150, reason="coupon", clock=fixed(NOW))
    later = NOW + timedelta(hours=1)

    messages, _ = run(ActionPointsBalance(), tracker(slots=identified(member)), later)

    expiring = [
        (m["points"], m["date"]) for m in messages if m["response"].startswith("utter_points_exp")
    ]
    assert expiring == [(200, "12月10日")]  # the 100 of 11-23 are spent, 50 of the 250 too
    assert ledger(crm, member)[0] == 700


def test_points_past_their_date_not_yet_written_off_are_told_as_past(run: Run, crm: Engine) -> None:
    member = a_member(crm, earned=[(NOW - timedelta(days=POINTS_VALID_DAYS + 2), 120)])
    messages, _ = run(ActionPointsBalance(), tracker(slots=identified(member)))
    said = [(m["response"], m["points"], m["date"]) for m in messages if "points" in m]
    assert said == [("utter_points_expired_unsettled", 120, "11月18日")]

    with session_scope(crm) as session:
        expire_points(session, customer_id=member, clock=fixed(NOW))
    messages, _ = run(ActionPointsBalance(), tracker(slots=identified(member)))
    assert [m for m in messages if "points" in m] == [] and messages[0]["balance"] == 0


def test_a_delivery_scan_is_told_as_delivered_even_before_the_order_status_moves(
    run: Run, crm: Engine
) -> None:
    with session_scope(crm) as session:
        order = create_order(
            session,
            customer_id=WANG,
            items=[NewItem("AF-200")],
            status="shipped",
            clock=fixed(NOW - timedelta(days=4)),
        )
        for status, days_ago in (("picked_up", 3), ("delivered", 1)):
            add_shipping_event(
                session,
                order_id=order.id,
                status=status,
                carrier="顺丰速运",
                clock=fixed(NOW - timedelta(days=days_ago)),
            )
    state = tracker(slots={**identified(WANG), "order_id": order.id}, intent="order_status")
    messages, _ = run(ActionOrderStatus(), state)
    assert responses(messages) == ["utter_order_status", "utter_order_delivered"]
    assert messages[1]["when"] == "11月19日 10:00"  # the scan's time, no "预计…送达"


# --- 3. the welcome once ---------------------------------------------------------------------


def rasa_session_start(*welcome: str) -> list[dict[str, Any]]:
    """The events Rasa records for a session start: the action, what it said, then the events
    it returned (session_started first), then action_listen."""
    said = [
        {"event": "bot", "text": "…", "metadata": {"utter_action": response}}
        for response in welcome
    ]
    return [
        {"event": "action", "name": "action_session_start"},
        *said,
        {"event": "session_started"},
        {"event": "slot", "name": "identified", "value": True},
        {"event": "action", "name": "action_listen"},
    ]


def test_a_conversation_that_starts_with_a_greeting_is_welcomed_once(run: Run) -> None:
    start = rasa_session_start("utter_welcome_back", "utter_pending_parcel")
    state = tracker(
        sender="demo", slots=identified(WANG), text="你好", intent="greet", events=start
    )
    assert run(ActionGreet(), state)[0] == []


def test_a_greeting_in_a_later_session_is_welcomed_by_name(run: Run) -> None:
    earlier = [
        *rasa_session_start("utter_welcome_back"),
        {"event": "user", "text": "你好", "parse_data": {"intent": {"name": "greet"}}},
        {"event": "action", "name": "action_greet"},
    ]
    # a new session whose start said nothing (no welcome): the greeting is answered by name
    events = [*earlier, *rasa_session_start()]
    state = tracker(
        sender="demo", slots=identified(WANG), text="你好", intent="greet", events=events
    )
    assert responses(run(ActionGreet(), state)[0]) == ["utter_welcome_back"]


def test_the_session_start_welcome_and_a_greeting_say_one_welcome_together(run: Run) -> None:
    said, _ = run(ActionSessionStart(), tracker(sender="demo"))
    start = rasa_session_start(*responses(said))
    state = tracker(
        sender="demo", slots=identified(WANG), text="你好", intent="greet", events=start
    )
    greeted, _ = run(ActionGreet(), state)
    assert responses(said + greeted).count("utter_welcome_back") == 1


# --- 4. two misses in a row: a person, in words -----------------------------------------------


def miss(text: str, intent: str, answer: str = "action_rephrase") -> list[dict[str, Any]]:
    return [
        {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}},
        {"event": "action", "name": answer},
        {"event": "bot", "text": "…"},
        {"event": "action", "name": "action_listen"},
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("阿巴阿巴", "nlu_fallback"), ("呜呜呜", "nlu_fallback")),
        (("阿巴阿巴", "nlu_fallback"), ("明天北京天气怎么样", "out_of_scope")),
        (("明天天气", "out_of_scope"), ("阿巴阿巴", "nlu_fallback")),
        (("13800138000", "inform"), ("阿巴阿巴", "nlu_fallback")),  # an answer to no question
    ],
)
def test_the_second_miss_in_a_row_offers_a_person_in_words(
    run: Run, first: tuple[str, str], second: tuple[str, str]
) -> None:
    state = tracker(text=second[0], intent=second[1], events=miss(*first))
    messages, events = run(ActionRephrase(), state)

    assert responses(messages) == ["utter_offer_human"]
    text = DOMAIN["responses"]["utter_offer_human"][0]["text"]
    assert "人工客服" in text and "转人工" in text  # said, not only a button
    assert slots_set(events)["fallback_streak"] == 2.0


def test_a_miss_after_an_understood_message_starts_counting_again(run: Run) -> None:
    understood = miss("我的积分", "points_balance", "action_points_balance")
    state = tracker(
        text="阿巴", intent="nlu_fallback", events=[*miss("阿巴", "nlu_fallback"), *understood]
    )
    assert responses(run(ActionRephrase(), state)[0]) == ["utter_please_rephrase"]
    out_of_scope = tracker(text="明天天气", intent="out_of_scope", events=understood)
    assert responses(run(ActionRephrase(), out_of_scope)[0]) == ["utter_out_of_scope"]


# --- 5. obvious answers ----------------------------------------------------------------------


def ship(
    crm: Engine, customer_id: int, days_ago: int, scans: tuple[str, ...] = ("picked_up",)
) -> str:
    with session_scope(crm) as session:
        order = create_order(
            session,
            customer_id=customer_id,
            items=[NewItem("KT-090")],
            status="shipped",
            clock=fixed(NOW - timedelta(days=days_ago)),
        )
        for scan in scans:
            add_shipping_event(
                session, order_id=order.id, status=scan, carrier="中通快递", clock=fixed(NOW)
            )
        return order.id


def test_the_one_order_on_its_way_is_answered_without_a_list(run: Run, crm: Engine) -> None:
    with session_scope(crm) as session:
        orders = list_orders(session, customer_id=WANG)
    assert len(orders) > 1 and [o.status for o in orders].count("shipped") == 1
    moving = next(o.id for o in orders if o.status == "shipped")

    messages, _ = run(ActionOrderStatus(), tracker(slots=identified(WANG), intent="order_status"))

    assert responses(messages) == ["utter_order_status", "utter_order_shipping"]
    assert messages[0]["order_id"] == moving


def test_two_orders_on_their_way_are_a_choice(run: Run, crm: Engine) -> None:
    second = ship(crm, WANG, days_ago=1)
    messages, _ = run(ActionOrderStatus(), tracker(slots=identified(WANG), intent="order_status"))
    assert responses(messages) == ["utter_choose_order"]
    assert second in messages[0]["buttons"][0]["payload"]


def test_a_member_with_a_single_order_hears_about_it(run: Run, crm: Engine) -> None:
    member = a_member(crm)
    with session_scope(crm) as session:
        only = create_order(
            session, customer_id=member, items=[NewItem("KT-090")], clock=fixed(NOW)
        )
    messages, _ = run(ActionOrderStatus(), tracker(slots=identified(member), intent="order_status"))
    assert responses(messages) == ["utter_order_status", "utter_order_no_shipping"]
    assert messages[0]["order_id"] == only.id and messages[0]["status"] == "已付款，等待发货"


def test_no_anonymous_greeting_says_welcome_back(run: Run) -> None:
    for variant in DOMAIN["responses"]["utter_greet"]:
        assert "欢迎回来" not in variant["text"]
    for sender, channel in (("web-first-visit", "web"), ("o_new_openid", "wechat")):
        start = tracker(sender=sender, channel=channel)
        said, events = run(ActionSessionStart(), start)
        assert said == [] and "customer_id" not in slots_set(events)
        greeted, _ = run(ActionGreet(), tracker(sender=sender, channel=channel, intent="greet"))
        assert responses(greeted) == ["utter_greet"]


# --- 2. (continued) promises in the past are not made again -----------------------------------


def test_a_parcel_past_its_usual_day_is_late_with_that_day_not_expected_today(
    run: Run, crm: Engine
) -> None:
    member = a_member(crm)
    with session_scope(crm) as session:
        order = create_order(
            session,
            customer_id=member,
            items=[NewItem("KT-090")],
            status="shipped",
            clock=fixed(NOW - timedelta(days=1)),
        )
        add_shipping_event(
            session, order_id=order.id, status="picked_up", carrier="中通快递", clock=fixed(NOW)
        )
    ask = tracker(slots=identified(member), intent="order_status")  # the obvious order

    on_time, _ = run(ActionOrderStatus(), ask, NOW + timedelta(days=1))
    late, _ = run(ActionOrderStatus(), ask, NOW + timedelta(days=5))

    assert responses(on_time)[1:] == ["utter_order_shipping"] and on_time[1]["eta"] == "11月23日"
    assert responses(late)[1:] == ["utter_order_shipping_late"] and late[1]["eta"] == "11月23日"


def test_a_ticket_past_its_answer_time_is_told_as_overdue(run: Run, crm: Engine) -> None:
    with session_scope(crm) as session:
        for ticket in list_tickets(session, customer_id=WANG):
            set_ticket_status(
                session, ticket_id=ticket.id, status="resolved", actor="test", clock=fixed(NOW)
            )
        ticket = open_ticket(
            session,
            customer_id=WANG,
            kind="message",
            subject="发票",
            description="发票还没收到",
            clock=fixed(NOW),
        )
    before, _ = run(ActionSessionStart(), tracker(sender="demo"), NOW + timedelta(hours=1))
    after, _ = run(ActionSessionStart(), tracker(sender="demo"), ticket.sla_due_at)

    [promise] = [m for m in before if m["response"].startswith("utter_pending_ticket")]
    [overdue] = [m for m in after if m["response"].startswith("utter_pending_ticket")]
    assert promise["response"] == "utter_pending_ticket" and overdue["ticket_id"] == ticket.id
    assert overdue["response"] == "utter_pending_ticket_overdue"
    assert overdue["due"] == promise["due"]  # the ticket's own SLA time, in both


# --- 4. (continued) a yes to the offer of a person --------------------------------------------


def after_the_bot_said(response: str, *intents: str) -> list[dict[str, Any]]:
    said = [
        {"event": "user", "text": "…", "parse_data": {"intent": {"name": intent}}}
        for intent in intents
    ]
    return [*said, {"event": "bot", "text": "…", "metadata": {"utter_action": response}}]


@pytest.mark.parametrize(
    ("offer", "intents", "reason"),
    [
        ("utter_offer_human", ("nlu_fallback", "nlu_fallback"), "fallback"),
        ("utter_complaint_ticket", ("complaint",), "complaint"),
    ],
)
def test_a_yes_to_the_offer_of_a_person_hands_over(
    run: Run, crm: Engine, offer: str, intents: tuple[str, ...], reason: str
) -> None:
    state = tracker(
        sender="web-yes",
        slots=identified(WANG),
        text="好的",
        intent="affirm",
        events=after_the_bot_said(offer, *intents),
    )
    messages, events = run(ActionAnswerYes(), state)

    assert responses(messages) == ["utter_handoff_queued"]
    assert [e["event"] for e in events] == ["pause"]
    with session_scope(crm) as session:
        handoff = find_open_handoff(session, conversation_id="web-yes")
    assert handoff is not None and handoff.reason == reason and handoff.customer_id == WANG


def test_any_other_yes_is_acknowledged(run: Run, crm: Engine) -> None:
    state = tracker(
        sender="web-ok",
        text="好的",
        intent="affirm",
        events=after_the_bot_said("utter_order_delivered", "order_status"),
    )
    messages, events = run(ActionAnswerYes(), state)
    assert responses(messages) == ["utter_acknowledge"] and events == []
    with session_scope(crm) as session:
        assert find_open_handoff(session, conversation_id="web-ok") is None


# --- claiming a choice the bot has just offered (the NLU side: tests/bot/test_choices.py) -----


def test_a_choice_taken_without_saying_which_is_asked_back_with_the_same_buttons(
    run: Run,
) -> None:
    offered = [
        {"title": "冬季满300减50券", "payload": '/ask_offers{"offer_key":"demo_winter_50"}'},
        {"title": "会员日95折券", "payload": '/ask_offers{"offer_key":"demo_member_day_95"}'},
    ]
    state = tracker(
        slots=identified(WANG),
        text="这个",
        intent="choose_option",
        extra={"offered_choices": offered},  # what the NLU step read the answer against
    )
    messages, _ = run(ActionAskWhichChoice(), state)
    assert responses(messages) == ["utter_ask_which_choice"]
    assert messages[0]["buttons"] == offered


def test_a_choice_with_nothing_offered_asks_what_they_would_like(run: Run) -> None:
    earlier = [{"event": "user", "text": "你好"}, {"event": "bot", "text": "您好"}]
    state = tracker(text="就这个吧", intent="choose_option", events=earlier)
    messages, _ = run(ActionAskWhichChoice(), state)
    assert responses(messages) == ["utter_ask_what_choice"]


def test_every_listed_offer_is_claimed_once_per_member(run: Run, crm: Engine) -> None:
    """The demo's public offers, claimed as a click or a resolved answer sends them."""
    for key in ("demo_winter_50", "demo_winter_50", "demo_member_day_95"):
        slots = {**identified(WANG), "offer_key": key}
        run(ActionListOffers(), tracker(slots=slots, text="第一个", intent="ask_offers"))
    with session_scope(crm) as session:
        offers = {o.id: o.key for o in list_offers(session)}
        claimed = [offers[c.offer_id] for c in list_coupons(session, customer_id=WANG)]
    assert sorted(k for k in claimed if k.startswith("demo_")) == [
        "demo_member_day_95",
        "demo_winter_50",
    ]


# --- two requests in one message: what the customer wants done wins, with the order named -----


def wangs_orders(crm: Engine) -> list[Any]:
    with session_scope(crm) as session:
        return list_orders(session, customer_id=WANG)


def test_a_complaint_that_names_an_order_keeps_it_on_the_ticket(run: Run, crm: Engine) -> None:
    order = wangs_orders(crm)[0]
    text = f"{order.id.lower()}买的东西有质量问题，我要投诉"
    run(ActionOpenComplaint(), tracker(slots=identified(WANG), text=text, intent="complaint"))
    with session_scope(crm) as session:
        [ticket] = [t for t in list_tickets(session, customer_id=WANG) if t.kind == "complaint"]
    assert ticket.order_id == order.id


def test_a_complaint_naming_someone_elses_order_does_not_attach_it(run: Run, crm: Engine) -> None:
    with session_scope(crm) as session:
        other = list_orders(session, customer_id=LI)[0]
    text = f"订单{other.id}太慢了，投诉"
    run(ActionOpenComplaint(), tracker(slots=identified(WANG), text=text, intent="complaint"))
    with session_scope(crm) as session:
        [ticket] = [t for t in list_tickets(session, customer_id=WANG) if t.kind == "complaint"]
    assert ticket.order_id is None


def test_a_return_for_a_named_order_with_several_items_asks_which_item_once(
    run: Run, crm: Engine
) -> None:
    order = next(o for o in wangs_orders(crm) if len(o.items) > 1 and o.status == "completed")
    activation = tracker(
        slots=identified(WANG),
        text=f"{order.id}这个订单我想退货",
        intent="return_refund",
        active_loop="return_form",
        extracted={"order_id": order.id},
    )
    messages, events = run(ValidateReturnForm(), activation)
    assert slots_set(events)["order_id"] == order.id and messages == []
    asked, _ = run(ActionAskReturnItem(), tracker(slots={**identified(WANG), "order_id": order.id}))
    assert responses(asked) == ["utter_ask_return_item"]
    assert asked[0]["items"] == "、".join(item.name for item in order.items)


# --- consent: the request decides, not the history it recounts --------------------------------


def consents_after(run: Run, crm: Engine, text: str, intent: str) -> tuple[dict[str, bool], Any]:
    messages, _ = run(
        ActionChangeConsent(), tracker(slots=identified(WANG), text=text, intent=intent)
    )
    with session_scope(crm) as session:
        return get_consents(session, customer_id=WANG), messages


def test_recounting_an_opt_out_while_asking_back_in_opts_in(run: Run, crm: Engine) -> None:
    consents_after(run, crm, "退订优惠", "unsubscribe")
    consents, messages = consents_after(
        run, crm, "我上个月退订了优惠消息，现在想重新接收", "unsubscribe"
    )
    assert consents["offer"] is True
    assert responses(messages) == ["utter_consent_updated"]
    assert messages[0]["changes"] == "恢复接收优惠活动"


def test_the_reply_names_only_what_changed(run: Run, crm: Engine) -> None:
    consents, messages = consents_after(run, crm, "退订优惠和回访", "unsubscribe")
    assert not consents["offer"] and not consents["follow_up"]
    assert messages[0]["changes"] == "退订回访、优惠活动"
    _, again = consents_after(run, crm, "退订优惠", "unsubscribe")
    assert responses(again) == ["utter_consent_unchanged"]


def reason_answer(text: str, order_id: str) -> Any:
    """A "no" while return_form asks why (the NLU reads "不想要了" as deny)."""
    slots = {**identified(WANG), "order_id": order_id, "return_item": "咖啡机"}
    return tracker(
        slots={**slots, "requested_slot": "return_reason"},
        text=text,
        intent="deny",
        active_loop="return_form",
    )


def returns_of_wang(crm: Engine) -> list[Any]:
    with session_scope(crm) as session:
        return [t for t in list_tickets(session, customer_id=WANG) if t.kind == "return"]


def test_no_longer_wanted_is_a_reason_and_the_return_is_opened(run: Run, crm: Engine) -> None:
    with session_scope(crm) as session:
        items = [NewItem("AF-200"), NewItem("KT-090")]
        order = create_order(session, customer_id=WANG, items=items, status="delivered")
        add_shipping_event(session, order_id=order.id, status="delivered", clock=fixed(NOW))
    messages, events = run(ActionStopReturnForm(), reason_answer("不想要了", order.id))
    assert responses(messages) == ["utter_return_ticket"]
    [ticket] = returns_of_wang(crm)
    assert ticket.order_id == order.id and ticket.description == "不想要了"
    assert any(e["event"] == "active_loop" and e["name"] is None for e in events)


@pytest.mark.parametrize(
    ("text", "slot"), [("算了，不退了", "return_reason"), ("不想要了", "return_item")]
)
def test_other_nos_in_the_return_form_stop_it_without_a_ticket(
    run: Run, crm: Engine, text: str, slot: str
) -> None:
    order = wangs_orders(crm)[0]
    state = reason_answer(text, order.id)
    state.slots["requested_slot"] = slot
    messages, events = run(ActionStopReturnForm(), state)
    assert responses(messages) == ["utter_form_stopped"]
    assert slots_set(events)["order_id"] is None and returns_of_wang(crm) == []


def test_leaving_a_form_for_a_person_says_no_cancelled_before_the_transfer(run: Run) -> None:
    state = tracker(
        slots=identified(WANG),
        text="太麻烦了，转人工",
        intent="request_human",
        active_loop="redeem_form",
    )
    messages, events = run(ActionStopForm(), state)
    assert messages == [] and any(e["event"] == "active_loop" for e in events)
    messages, _ = run(
        ActionStopForm(), tracker(text="算了", intent="deny", active_loop="redeem_form")
    )
    assert responses(messages) == ["utter_form_stopped"]


def test_after_a_wrong_code_the_form_does_not_claim_a_new_code_was_sent(run: Run) -> None:
    wrong = {
        "event": "bot",
        "text": "验证码不正确",
        "metadata": {"utter_action": "utter_otp_wrong"},
    }
    earlier = [{"event": "user", "text": "13800138000"}, {"event": "bot", "text": "已发送"}]
    asked, _ = run(ActionAskOtpCode(), tracker(text="123456", events=earlier))
    assert responses(asked) == ["utter_ask_otp_code"]
    state = tracker(text="123456", events=earlier)
    state.events.append(wrong)  # the validation answered this message
    again, _ = run(ActionAskOtpCode(), state)
    assert again == []
    contact, _ = run(ActionAskContactCode(), state)
    assert contact == []
