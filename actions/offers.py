"""ask_offers: the offers this customer may claim, as buttons; a click claims one coupon (one per
customer per offer, on every channel)."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn
from actions.rules.offers import eligible_offers
from crm_store.errors import Conflict, NotFound
from crm_store.offers import get_offer, issue_coupon, list_coupons, list_offers


def list_for_customer(turn: Turn) -> None:
    customer = turn.customer()
    if customer is None:
        return
    offers = eligible_offers(list_offers(turn.session))
    if not offers:
        turn.say("utter_no_offers")
        return
    buttons = [
        {"title": offer.name, "payload": f'/ask_offers{{"offer_key":"{offer.key}"}}'}
        for offer in offers[:5]
    ]
    turn.dispatcher.utter_message(response="utter_offers_list", buttons=buttons)


def claim(turn: Turn, offer_key: str) -> None:
    customer = turn.customer()
    if customer is None:
        return
    try:
        offer = get_offer(turn.session, key=offer_key)
        eligible = eligible_offers([offer])
        if not eligible:
            raise Conflict(f"offer {offer_key} is not offered")
        already = {c.offer_id for c in list_coupons(turn.session, customer_id=customer.id)}
        coupon = issue_coupon(
            turn.session, clock=turn.clock, offer_key=offer_key, customer_id=customer.id
        )
    except (Conflict, NotFound):
        turn.say("utter_offer_unavailable")
        return
    expires = turn.local(coupon.expires_at, "%Y年%m月%d日")
    response = "utter_coupon_already" if offer.id in already else "utter_coupon_issued"
    turn.say(response, offer=offer.name, code=coupon.code, expires=expires)


def answer_offers(turn: Turn) -> Events:
    offer_key = turn.tracker.get_slot("offer_key")
    if offer_key:
        claim(turn, str(offer_key))
    else:
        list_for_customer(turn)
    return [SlotSet("offer_key", None)]


class ActionListOffers(CareAction):
    def name(self) -> str:
        return "action_list_offers"

    def act(self, turn: Turn) -> Events:
        return answer_offers(turn)
