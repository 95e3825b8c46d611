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
    before = get_consents(turn.session, customer_id=customer.id)
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
    on = category_names(turn, [c for c in CATEGORIES if consents.get(c)])
    off = category_names(turn, [c for c in CATEGORIES if not consents.get(c)])
    changed = {c: g for c, g in changes.items() if bool(before.get(c)) != g}
    if not changed:
        turn.say("utter_consent_unchanged", on=on, off=off)
        return []
    turn.say("utter_consent_updated", changes=describe_changes(turn, changed), on=on, off=off)
    return []


def describe_changes(turn: Turn, changed: dict[str, bool]) -> str:
    """What this request changed, in the customer's words: "恢复接收优惠活动，退订回访"."""
    turned_on = [c for c in CATEGORIES if changed.get(c) is True]
    turned_off = [c for c in CATEGORIES if changed.get(c) is False]
    parts = []
    if turned_on:
        names = category_names(turn, turned_on)
        parts.append(turn.text_of("utter_consent_change_on").format(categories=names))
    if turned_off:
        names = category_names(turn, turned_off)
        parts.append(turn.text_of("utter_consent_change_off").format(categories=names))
    return "，".join(parts)


class ActionChangeConsent(CareAction):
    def name(self) -> str:
        return "action_change_consent"

    def act(self, turn: Turn) -> Events:
        return answer_consent_change(turn)
