"""Issue 16's dialogue classes end to end, on the real system: an offer claimed by its number,
name or a pointing word (REST and WeChat's numbered lines), two requests in one message, and a
consent change decided by the request."""

from __future__ import annotations

import uuid

import pytest

from crm_store.customers import create_customer, get_consents
from crm_store.identities import link_identity
from crm_store.offers import list_coupons, list_offers
from crm_store.orders import NewItem, add_shipping_event, create_order
from crm_store.tickets import list_tickets
from tests.integration.system import System
from tests.integration.test_care import crm, said
from tests.integration.test_wechat_sim import act, bot_records, last_id

pytestmark = pytest.mark.integration


def a_rest_member(system: System, *, delivered_items: tuple[str, ...] = ()) -> tuple[str, int, str]:
    """A new member the brand's back end names as `rest:<user>`, with one delivered order."""
    user = f"m-{uuid.uuid4().hex[:10]}"
    with crm(system) as session:
        member = create_customer(session, name="周芷若", phone=f"136{uuid.uuid4().int % 10**8:08d}")
        link_identity(session, customer_id=member.id, kind="rest_user", value=user)
        order_id = ""
        if delivered_items:
            items = [NewItem(sku=sku, quantity=1) for sku in delivered_items]
            order = create_order(session, customer_id=member.id, items=items, status="delivered")
            add_shipping_event(session, order_id=order.id, status="delivered", location="上海")
            order_id = order.id
    return user, member.id, order_id


def claimed_offers(system: System, customer_id: int) -> list[str]:
    with crm(system) as session:
        keys = {offer.id: offer.key for offer in list_offers(session)}
        return sorted(keys[c.offer_id] for c in list_coupons(session, customer_id=customer_id))


def test_offers_are_claimed_by_number_pointing_and_name_once_each(system: System) -> None:
    user, member, _ = a_rest_member(system)
    listed = system.say(user, "有什么优惠")
    [menu] = [reply for reply in listed if reply.get("buttons")]
    titles = [button["title"] for button in menu["buttons"]]
    assert said(system.say(user, "2"), "utter_coupon_issued")
    system.say(user, "有什么优惠")
    assert said(system.say(user, "这个"), "utter_ask_which_choice")
    assert said(system.say(user, "最后一个"), "utter_coupon_issued")
    system.say(user, "有什么优惠")
    name = titles[1].removesuffix("券")
    assert said(system.say(user, f"我要领{name}那张"), "utter_coupon_already")
    assert len(claimed_offers(system, member)) == 2


def test_on_wechat_a_numbered_line_and_a_named_coupon_are_claims(system: System) -> None:
    openid = f"o_sim_{uuid.uuid4().hex[:12]}"
    with crm(system) as session:
        member = create_customer(session, name="张无忌", phone=f"137{uuid.uuid4().int % 10**8:08d}")
        link_identity(session, customer_id=member.id, kind="wechat_openid", value=openid)
    act(system, openid, "event", {"event": "subscribe"})
    since = last_id(system)
    act(system, openid, "send", {"text": "有什么优惠"})
    listing = "\n".join(r["content"] for r in bot_records(system, openid, since, "passive"))
    assert "1. " in listing and "2. " in listing, listing
    second = listing.split("2. ", 1)[1].splitlines()[0]
    act(system, openid, "send", {"text": "1"})
    act(system, openid, "send", {"text": "有什么优惠"})
    since = last_id(system)
    act(system, openid, "send", {"text": f"我要用{second}"})
    claimed = bot_records(system, openid, since, "passive")
    assert any("领取成功" in r["content"] and second in r["content"] for r in claimed), claimed
    assert len(claimed_offers(system, member.id)) == 2


def test_a_message_naming_an_order_and_asking_to_return_it_opens_the_return(
    system: System,
) -> None:
    user, member, order_id = a_rest_member(system, delivered_items=("AF-200", "KT-090"))
    asked = system.say(user, f"{order_id}这个订单收到了，我想退货")
    assert said(asked, "utter_ask_return_item"), asked
    assert not said(asked, "utter_order_status")
    assert "{items}" not in str(asked)
    system.say(user, "第一个")
    system.say(user, "不想要了")
    with crm(system) as session:
        [ticket] = list_tickets(session, customer_id=member)
    assert ticket.kind == "return" and ticket.order_id == order_id


def test_a_complaint_about_a_named_order_keeps_the_order(system: System) -> None:
    user, member, order_id = a_rest_member(system, delivered_items=("AF-200",))
    system.say(user, f"{order_id}买的空气炸锅有质量问题，我要投诉")
    with crm(system) as session:
        tickets = list_tickets(session, customer_id=member)
    assert [(t.kind, t.order_id) for t in tickets] == [("complaint", order_id)]


def test_an_opt_in_that_recounts_the_opt_out_opts_in_and_says_so(system: System) -> None:
    user, member, _ = a_rest_member(system)
    system.say(user, "以后别给我发优惠广告了")
    replies = system.say(user, "我上个月退订了优惠消息，现在想重新接收优惠")
    assert said(replies, "utter_consent_updated"), replies
    assert any("恢复接收优惠活动" in r.get("text", "") for r in replies)
    with crm(system) as session:
        assert get_consents(session, customer_id=member)["offer"] is True
