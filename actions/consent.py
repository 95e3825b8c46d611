"""unsubscribe / subscribe: consent per message category, in the customer's words ("退订优惠，
保留回访"), confirmed back and stored for every later proactive message on every channel."""

from __future__ import annotations

from actions.base import CareAction, Events, Turn
from actions.identity import channel_of
from actions.rules.consent import parse_consent_change
from crm_store.customers import get_consents, set_consent
from crm_store.models import CATEGORIES


def category_names(turn: Turn, categories: list[str]) -> str:
    names = [turn.text_of(f"utter_consent_category_{category}") for category in categories]
    return "、".join(names) or turn.text_of("utter_consent_none")


def answer_consent_change(turn: Turn) -> Events:
    customer = turn.customer()
    if customer is None:
        return []
    pending = turn.tracker.get_slot("pending_intent")
    message = turn.tracker.latest_message
    intent = str((message.get("intent") or {}).get("name") or "")
    text = str(message.get("text") or "")
    if pending in ("unsubscribe", "subscribe") and intent not in ("unsubscribe", "subscribe"):
        intent, text = pending, str(turn.tracker.get_slot("pending_text") or "")
    changes = parse_consent_change(text, intent)
    if not changes:
        turn.say("utter_consent_ask_which")
        return []
    for category, granted in changes.items():
        set_consent(
            turn.session,
            clock=turn.clock,
            customer_id=customer.id,
            category=category,
            granted=granted,
            source="chat",
            channel=channel_of(turn),
            actor=f"customer:{customer.id}",
        )
    consents = get_consents(turn.session, customer_id=customer.id)
    on = [category for category in CATEGORIES if consents.get(category)]
    off = [category for category in CATEGORIES if not consents.get(category)]
    turn.say("utter_consent_updated", on=category_names(turn, on), off=category_names(turn, off))
    return []


class ActionChangeConsent(CareAction):
    def name(self) -> str:
        return "action_change_consent"

    def act(self, turn: Turn) -> Events:
        return answer_consent_change(turn)
