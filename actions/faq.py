"""faq/*: the answer of the sub-intent the intent model picked, then what the CRM adds for this
customer (when their warranty ends; the benefits of their own tier)."""

from __future__ import annotations

from actions.base import CareAction, Events, Turn
from crm_store.orders import list_warranties


def selected_response(turn: Turn) -> str | None:
    """The retrieval answer Rasa chose (utter_faq/<sub-intent>), if any."""
    selector = (turn.tracker.latest_message.get("response_selector") or {}).get("faq") or {}
    response = selector.get("response") or {}
    name = response.get("utter_action")
    return str(name) if name else None


def personalise(turn: Turn, response: str) -> None:
    customer = turn.customer()
    if customer is None:
        return
    if response == "utter_faq/warranty":
        today = turn.now.date()
        running = list_warranties(turn.session, customer_id=customer.id, active_on=today)
        for warranty in running[:3]:
            ends_on = f"{warranty.ends_on.year}年{warranty.ends_on.month}月{warranty.ends_on.day}日"
            turn.say("utter_warranty_personal", product=warranty.product_name, ends_on=ends_on)
    elif response == "utter_faq/membership_benefits":
        turn.say("utter_tier_benefits", tier=customer.tier)


class ActionAnswerFaq(CareAction):
    def name(self) -> str:
        return "action_answer_faq"

    def act(self, turn: Turn) -> Events:
        response = selected_response(turn)
        if response is None:
            turn.say("utter_please_rephrase")
            return []
        turn.say(response)
        personalise(turn, response)
        return []
