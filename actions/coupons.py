"""use_coupon: a customer uses a coupon in the dialogue (the win-back message's button, or
"用券" with the code): it takes money off their open order, or stays theirs until they order."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn
from actions.rules.care import choose_coupon, codes_in, order_for_coupon
from crm_store.errors import Conflict, NotFound
from crm_store.offers import Coupon, discount_cents, list_coupons, list_offers, redeem_coupon
from crm_store.orders import list_orders

RECENT_ORDERS = 5


def chosen_coupon(turn: Turn, coupons: list[Coupon]) -> Coupon | None:
    named = [str(turn.tracker.get_slot("coupon_code") or "").upper()]
    named += codes_in(str(turn.tracker.latest_message.get("text") or ""))
    return choose_coupon([code for code in named if code], coupons, turn.now)


def use_coupon(turn: Turn) -> None:
    customer = turn.customer()
    if customer is None:
        return
    coupon = chosen_coupon(turn, list_coupons(turn.session, customer_id=customer.id))
    if coupon is None or coupon.status != "issued" or coupon.expires_at <= turn.now:
        turn.say("utter_coupon_not_usable")
        return
    offer = next(o for o in list_offers(turn.session, active_only=False) if o.id == coupon.offer_id)
    orders = list_orders(turn.session, customer_id=customer.id, limit=RECENT_ORDERS)
    order = order_for_coupon(orders, coupon)
    discount = discount_cents(offer, order.total_cents) if order else 0
    if order is None or discount == 0:
        expires = turn.local(coupon.expires_at, "%Y年%m月%d日")
        turn.say("utter_coupon_kept", code=coupon.code, expires=expires)
        return
    try:
        redeem_coupon(
            turn.session,
            code=coupon.code,
            customer_id=customer.id,
            order_id=order.id,
            clock=turn.clock,
        )
    except (Conflict, NotFound):
        turn.say("utter_coupon_not_usable")
        return
    turn.say(
        "utter_coupon_applied", order_id=order.id, code=coupon.code, yuan=f"{discount / 100:g}"
    )


def answer_use_coupon(turn: Turn) -> Events:
    use_coupon(turn)
    return [SlotSet("coupon_code", None)]


class ActionUseCoupon(CareAction):
    def name(self) -> str:
        return "action_use_coupon"

    def act(self, turn: Turn) -> Events:
        return answer_use_coupon(turn)
