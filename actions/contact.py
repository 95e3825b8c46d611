"""update_contact: a new mainland mobile number, proved by a one-time code sent to it (the same
rate limits and lockout as identification), confirmed, saved with an audit entry; the old number
is then told by SMS that it was replaced."""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn
from actions.forms import CareFormValidation
from actions.identity import (
    CODE_ANSWERS,
    RATE_LIMITED,
    answers_the_code,
    check_code,
    not_verified,
    said_this_turn,
    send_code,
)
from actions.rules.identity import (
    VERIFIED_CODE_LIFETIME,
    PendingCode,
    mask_mobile,
    normalize_mobile,
)
from actions.sms import CONTACT_CHANGED_TEXT, SMS, SmsProvider, send_after_commit
from crm_store.customers import Customer, find_customer, update_customer
from crm_store.errors import Conflict
from crm_store.login_codes import login_code_verified

log = logging.getLogger(__name__)

# Ends update_contact_form; action_update_contact then has nothing to save and says nothing
# (the validation already told the customer why).
CONTACT_STOP: dict[str, Any] = {
    "requested_slot": None,
    "new_phone": None,
    "contact_code": None,
    "contact_confirmed": None,
    "otp_state": None,
}


class ValidateUpdateContactForm(CareFormValidation):
    form = "update_contact_form"
    sms: SmsProvider = SMS

    def on_activation(self, turn: Turn) -> dict[str, Any]:
        """Nothing from an earlier, abandoned change counts."""
        return {"contact_code": None, "otp_state": None}

    def validate_new_phone(self, value: Any, turn: Turn) -> dict[str, Any]:
        """A well-formed number gets a code. Whether it is another member's is told only to
        whoever proves they have it (`validate_contact_code`)."""
        phone = normalize_mobile(str(value or ""))
        if phone is None:
            turn.say("utter_new_phone_invalid")
            return {"new_phone": None}
        if turn.customer_id is None:  # the rules start this form for identified customers only
            return CONTACT_STOP
        pending = send_code(turn, self.sms, phone=phone, customer_id=turn.customer_id)
        if pending is None:
            turn.say(RATE_LIMITED)
            return CONTACT_STOP
        return {
            "new_phone": phone,
            "masked_phone": mask_mobile(phone),
            "contact_code": None,
            "otp_state": pending.to_slot(),
        }

    def validate_contact_code(self, value: Any, turn: Turn) -> dict[str, Any]:
        if not answers_the_code(turn, "contact_code", "new_phone"):
            return {"contact_code": None}
        pending = PendingCode.from_slot(turn.tracker.get_slot("otp_state"))
        phone = turn.tracker.get_slot("new_phone")
        if pending is None or pending.phone != phone:
            return {"contact_code": None, "new_phone": None, "otp_state": None}
        check = check_code(turn, pending, value)
        if check.verdict == "ok" and check.customer_id == turn.customer_id:
            return self.verified(turn, pending.phone)
        return not_verified(
            turn,
            self.sms,
            pending,
            check,
            code_slot="contact_code",
            phone_slot="new_phone",
            customer_id=turn.customer_id,
            stop=CONTACT_STOP,
        )

    def verified(self, turn: Turn, phone: str) -> dict[str, Any]:
        owner = find_customer(turn.session, phone=phone)
        if owner is not None and owner.id != turn.customer_id:
            turn.say("utter_contact_taken")
            return CONTACT_STOP
        return {"contact_code": "verified"}


def verified_for_change(turn: Turn, customer: Customer, phone: str) -> bool:
    """The conversation's pending code went to `phone` for this customer and was answered right
    within VERIFIED_CODE_LIFETIME: the slots alone are not taken for it."""
    pending = PendingCode.from_slot(turn.tracker.get_slot("otp_state"))
    return (
        pending is not None
        and pending.phone == phone
        and login_code_verified(
            turn.session,
            code_id=pending.code_id,
            phone=phone,
            client=turn.crm_conversation_id,
            customer_id=customer.id,
            since=turn.now - VERIFIED_CODE_LIFETIME,
        )
    )


class ActionUpdateContact(CareAction):
    sms: SmsProvider = SMS

    def name(self) -> str:
        return "action_update_contact"

    def act(self, turn: Turn) -> Events:
        reset = [
            SlotSet(slot, None)
            for slot in ("new_phone", "contact_code", "contact_confirmed", "otp_state")
        ]
        phone = turn.tracker.get_slot("new_phone")
        customer = turn.customer()
        if not phone:  # the form was ended early, and the customer was told why
            return reset
        if not turn.tracker.get_slot("contact_confirmed") or customer is None:
            turn.say("utter_contact_unchanged")
            return reset
        if not verified_for_change(turn, customer, phone):
            log.warning("phone change without a verified code in %s", turn.conversation_id)
            turn.say("utter_contact_unchanged")
            return reset
        try:
            update_customer(
                turn.session,
                clock=turn.clock,
                customer_id=customer.id,
                actor=f"customer:{customer.id}",
                phone=phone,
            )
        except Conflict:
            turn.say("utter_contact_taken")
            return reset
        turn.say("utter_contact_updated", masked_phone=mask_mobile(phone))
        self.notify_old_number(turn, customer.phone, phone)
        return reset

    def notify_old_number(self, turn: Turn, old: str | None, new: str) -> None:
        """The number that was replaced hears of it (after the change is committed)."""
        if old and old != new:
            send_after_commit(
                turn.session, lambda: self.sms.send_notice(old, CONTACT_CHANGED_TEXT), old
            )


class ActionAskContactCode(CareAction):
    """The question for the new number's code; after a wrong or expired code the validation's
    own answer asks again (no second "验证码已发送到…")."""

    def name(self) -> str:
        return "action_ask_contact_code"

    def act(self, turn: Turn) -> Events:
        if not said_this_turn(turn.tracker.events, CODE_ANSWERS):
            turn.say("utter_ask_contact_code")
        return []
