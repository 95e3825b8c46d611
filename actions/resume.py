"""After identification: answer what the customer asked for before they had to identify."""

from __future__ import annotations

from collections.abc import Callable

from rasa_sdk.events import FollowupAction, SlotSet

from actions.base import CareAction, Events, Turn
from actions.complaints import answer_complaint
from actions.consent import answer_consent_change
from actions.coupons import answer_use_coupon
from actions.offers import answer_offers
from actions.orders import answer_order_status
from actions.points import answer_points_balance

ANSWERS: dict[str, Callable[[Turn], Events]] = {
    "order_status": answer_order_status,
    "points_balance": answer_points_balance,
    "complaint": answer_complaint,
    "unsubscribe": answer_consent_change,
    "subscribe": answer_consent_change,
    "ask_offers": answer_offers,
    "use_coupon": answer_use_coupon,
}
# Requests that are forms themselves: started right after identification.
FORMS = {
    "redeem_points": "redeem_form",
    "return_refund": "return_form",
    "update_contact": "update_contact_form",
}


class ActionResumeAfterIdentify(CareAction):
    def name(self) -> str:
        return "action_resume_after_identify"

    def act(self, turn: Turn) -> Events:
        pending = str(turn.tracker.get_slot("pending_intent") or "")
        events: Events = []
        if pending in ANSWERS:
            events = ANSWERS[pending](turn)
        elif pending in FORMS:
            events = [FollowupAction(FORMS[pending])]
        return [
            *events,
            SlotSet("pending_intent", None),
            SlotSet("pending_text", None),
            SlotSet("identify_phone", None),
            SlotSet("otp_code", None),
        ]
