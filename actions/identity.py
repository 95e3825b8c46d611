"""Who is this customer? By channel identity when the session starts; otherwise by their phone
number and a one-time code sent by the SMS stub (the code is written to the log)."""

from __future__ import annotations

import logging
import random
import secrets
from typing import Any

from rasa_sdk.events import SlotSet

from actions.base import Turn
from actions.forms import CareFormValidation
from actions.rules.identity import (
    OtpState,
    check_otp,
    issue_otp,
    mask_mobile,
    new_otp,
    normalize_mobile,
    spend_attempt,
)
from crm_store.customers import Customer, find_customer, get_customer
from crm_store.errors import Conflict
from crm_store.identities import find_customer_by_identity, link_identity
from crm_store.interactions import ensure_conversation
from crm_store.models import IDENTITY_KINDS

log = logging.getLogger(__name__)
sms_log = logging.getLogger("carebot.sms_stub")

# Identity kinds a channel may vouch for. The web channels pass a logged-in user id (the demo
# login) or a session id that a one-time code verified; WeChat signs the openid it sends.
KINDS_BY_CHANNEL = {
    "wechat": ("wechat_openid",),
    "web": ("web_user", "web_session"),
}
_rng = random.SystemRandom()


def channel_of(turn: Turn) -> str:
    """'wechat' or 'web': from the message metadata our channels set, else the input channel."""
    metadata = turn.tracker.get_slot("session_started_metadata") or {}
    name = metadata.get("channel") or turn.tracker.get_latest_input_channel() or "web"
    return "wechat" if name == "wechat" else "web"


def known_customer(turn: Turn) -> Customer | None:
    for kind in KINDS_BY_CHANNEL[channel_of(turn)]:
        customer = find_customer_by_identity(turn.session, kind=kind, value=turn.conversation_id)
        if customer is not None:
            return customer
    return None


def is_external_trigger(turn: Turn) -> bool:
    """Whether the latest message is an `EXTERNAL_*` intent from Rasa's trigger_intent API (an
    authenticated caller), not a customer typing "/EXTERNAL_..." into a channel."""
    message = turn.tracker.latest_message
    intent = (message.get("intent") or {}).get("name") or ""
    return intent.startswith("EXTERNAL_") and message.get("text") == f"EXTERNAL: {intent}"


def owner_of_conversation(turn: Turn) -> Customer | None:
    """For an external trigger: the customer whose channel identity this conversation is, on
    any channel. A trigger into a new conversation has no input channel to go by, and the
    caller (the scheduler) chose the conversation from the customer's own identities."""
    customer = turn.customer()
    if customer is not None:
        return customer
    for kind in IDENTITY_KINDS:
        found = find_customer_by_identity(turn.session, kind=kind, value=turn.conversation_id)
        if found is not None:
            return found
    return None


def identified_slots(customer: Customer) -> list[dict[str, Any]]:
    return [
        SlotSet("identified", True),
        SlotSet("customer_id", float(customer.id)),
        SlotSet("customer_name", customer.name),
    ]


def attach_conversation(turn: Turn, customer: Customer) -> None:
    ensure_conversation(
        turn.session,
        clock=turn.clock,
        conversation_id=turn.crm_conversation_id,
        channel=channel_of(turn),
        customer_id=customer.id,
    )


def send_code(turn: Turn, phone: str) -> OtpState:
    code = new_otp(_rng)
    sms_log.warning("SMS stub: one-time code %s to %s", code, mask_mobile(phone))
    return issue_otp(code, secrets.token_hex(8), turn.now)


class ValidateIdentifyForm(CareFormValidation):
    form = "identify_form"

    def on_activation(self, turn: Turn) -> dict[str, Any]:
        """Remember what the customer wanted, to answer it once they are identified."""
        message = turn.tracker.latest_message
        return {
            "pending_intent": (message.get("intent") or {}).get("name"),
            "pending_text": message.get("text"),
        }

    def validate_identify_phone(self, value: Any, turn: Turn) -> dict[str, Any]:
        phone = normalize_mobile(str(value or ""))
        if phone is None:
            turn.say("utter_identify_phone_invalid")
            return {"identify_phone": None}
        customer = find_customer(turn.session, phone=phone)
        if customer is None:
            turn.say("utter_identify_phone_unknown")
            return {"identify_phone": None}
        state = send_code(turn, phone)
        pending = {"otp": state.to_slot(), "customer_id": customer.id, "phone": phone}
        return {"identify_phone": mask_mobile(phone), "otp_state": pending}

    def validate_otp_code(self, value: Any, turn: Turn) -> dict[str, Any]:
        pending = turn.tracker.get_slot("otp_state") or {}
        state = OtpState.from_slot(pending.get("otp"))
        if state is None:
            return {"otp_code": None, "identify_phone": None, "otp_state": None}
        verdict = check_otp(state, str(value or ""), turn.now)
        if verdict == "ok":
            return self.verified(turn, int(pending["customer_id"]))
        if verdict == "expired":
            fresh = send_code(turn, pending["phone"])
            turn.say("utter_otp_expired", masked_phone=mask_mobile(pending["phone"]))
            return {"otp_code": None, "otp_state": {**pending, "otp": fresh.to_slot()}}
        if verdict == "wrong":
            spent = spend_attempt(state)
            turn.say("utter_otp_wrong", attempts_left=spent.attempts_left)
            return {"otp_code": None, "otp_state": {**pending, "otp": spent.to_slot()}}
        turn.say("utter_otp_locked")
        return {"otp_code": None, "identify_phone": None, "otp_state": None}

    def verified(self, turn: Turn, customer_id: int) -> dict[str, Any]:
        customer = get_customer(turn.session, customer_id=customer_id)
        try:
            link_identity(
                turn.session,
                clock=turn.clock,
                customer_id=customer.id,
                kind="wechat_openid" if channel_of(turn) == "wechat" else "web_session",
                value=turn.conversation_id,
            )
        except Conflict:
            log.warning("conversation %s is linked to another customer", turn.conversation_id)
            turn.say("utter_identify_phone_unknown")
            return {"otp_code": None, "identify_phone": None, "otp_state": None}
        attach_conversation(turn, customer)
        turn.say("utter_identified", name=customer.name)
        slots = {event["name"]: event["value"] for event in identified_slots(customer)}
        return {"otp_code": "verified", "otp_state": None, **slots}
