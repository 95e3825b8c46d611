"""Who is this customer? By channel identity when the session starts; otherwise by their phone
number and a one-time code (docs/care_dialogues.md, "Who is the customer?").

The one-time code machinery is shared with the phone change (actions/contact.py): `send_code`
checks the rate limits and the lockout (actions/rules/identity.py), stores the code in the CRM
(only its digest: crm_store/login_codes.py) and has the SMS provider send it (actions/sms.py);
`check_code` and `not_verified` judge an answer. A number that belongs to nobody is treated
exactly like a member's, except that nothing is sent and no answer is ever right: the customer
cannot tell the two apart, and the limits count both.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from typing import Any

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn
from actions.forms import CareFormValidation
from actions.rules.channels import (
    KINDS_BY_CHANNEL,
    crm_channel,
    identity_kinds,
    identity_value,
    trusted_channel,
    verified_kind,
)
from actions.rules.identity import (
    LOCKOUT_MEMORY,
    OTP_ATTEMPTS,
    OTP_VALIDITY,
    PendingCode,
    Window,
    extract_otp,
    mask_mobile,
    new_otp,
    normalize_mobile,
    otp_windows,
    send_refusal,
)
from actions.sms import SMS, SmsProvider, send_after_commit
from crm_store.customers import Customer, find_customer, get_customer
from crm_store.errors import Conflict
from crm_store.identities import find_customer_by_identity, link_identity
from crm_store.interactions import ensure_conversation
from crm_store.login_codes import (
    CodeCheck,
    check_login_code,
    count_login_codes,
    hold_phone,
    issue_login_code,
    purge_login_codes,
    spent_login_codes,
)

log = logging.getLogger(__name__)

RATE_LIMITED = "utter_otp_rate_limited"
# Read when the action server starts: a malformed CAREBOT_OTP_PER_MINUTE stops it there.
WINDOWS = otp_windows(os.environ)

_rng = random.SystemRandom()


def conversation_channel(turn: Turn) -> str | None:
    """The channel our input channel wrote into the message metadata (never the client's
    words: docs/security.md), or None for Rasa's token-protected HTTP API."""
    metadata = turn.tracker.get_slot("session_started_metadata") or (
        turn.tracker.latest_message.get("metadata") or {}
    )
    return trusted_channel(metadata, turn.tracker.get_latest_input_channel())


def channel_of(turn: Turn) -> str:
    """The CRM channel of this conversation: 'wechat' or 'web'. A conversation the scheduler
    reached through Rasa's HTTP API (a post-purchase survey on WeChat) carries no channel of
    its own: the identity its id stands for says which channel it is on."""
    channel = conversation_channel(turn)
    if channel is None or (channel == "web_anonymous" and is_external_trigger(turn)):
        channel = channel_named_by_identity(turn) or channel
    return crm_channel(channel)


def channel_named_by_identity(turn: Turn) -> str | None:
    for channel, kinds in KINDS_BY_CHANNEL.items():
        if find_by_identities(turn, kinds) is not None:
            return channel
    return None


def find_by_identities(turn: Turn, kinds: tuple[str, ...]) -> Customer | None:
    """The member one of these identity kinds names as this conversation, if any."""
    for kind in kinds:
        value = identity_value(kind, turn.conversation_id)
        if value is None:
            continue
        customer = find_customer_by_identity(turn.session, kind=kind, value=value)
        if customer is not None:
            return customer
    return None


def known_customer(turn: Turn) -> Customer | None:
    return find_by_identities(turn, identity_kinds(conversation_channel(turn)))


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
    return find_by_identities(turn, identity_kinds(None))


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


def issued_counts(turn: Turn, phone: str) -> dict[Window, int]:
    """Codes issued within each rate-limit window, for the window's phone, client or all."""
    scopes: dict[str, dict[str, str]] = {
        "phone": {"phone": phone},
        "client": {"client": turn.crm_conversation_id},
        "overall": {},
    }
    return {
        window: count_login_codes(
            turn.session, since=turn.now - window.period, **scopes[window.scope]
        )
        for window in WINDOWS
    }


def send_code(
    turn: Turn, sms: SmsProvider, *, phone: str, customer_id: int | None
) -> PendingCode | None:
    """A new code for `phone`, or None when a rate limit or the phone's lockout refuses one.

    `customer_id` is whom the code identifies or authorises; None (a number of nobody's) stores
    the code all the same and sends nothing. The SMS goes out after the turn commits."""
    hold_phone(turn.session, phone=phone)
    spent = spent_login_codes(turn.session, phone=phone, since=turn.now - LOCKOUT_MEMORY)
    refusal = send_refusal(issued_counts(turn, phone), spent, turn.now)
    if refusal is not None:
        log.warning("one-time code refused (%s) in conversation %s", refusal, turn.conversation_id)
        return None
    code = new_otp(_rng)
    issued = issue_login_code(
        turn.session,
        phone=phone,
        client=turn.crm_conversation_id,
        customer_id=customer_id,
        code=code,
        valid_for=OTP_VALIDITY,
        attempts=OTP_ATTEMPTS,
        clock=turn.clock,
    )
    if customer_id is not None:
        send_after_commit(turn.session, lambda: sms.send_code(phone, code), phone)
    purge_login_codes(turn.session, expired_before=turn.now - LOCKOUT_MEMORY)
    return PendingCode(issued.id, phone)


def check_code(turn: Turn, pending: PendingCode, answer: Any) -> CodeCheck:
    """The CRM's verdict on the customer's answer to `pending` (an attempt spent if wrong)."""
    return check_login_code(
        turn.session,
        code_id=pending.code_id,
        client=turn.crm_conversation_id,
        code=extract_otp(str(answer or "")),
        clock=turn.clock,
    )


def not_verified(
    turn: Turn,
    sms: SmsProvider,
    pending: PendingCode,
    check: CodeCheck,
    *,
    code_slot: str,
    phone_slot: str,
    customer_id: int | None,
    stop: Mapping[str, Any],
) -> dict[str, Any]:
    """The slots after an answer that is not the right code (`stop` ends the form):
    wrong: try again; expired: a fresh code to the same number (`customer_id` as in
    `send_code`), if the limits allow; locked: try later; missing or used: ask for the number."""
    if check.verdict == "wrong":
        turn.say("utter_otp_wrong", attempts_left=check.attempts_left)
        return {code_slot: None}
    if check.verdict == "expired":
        fresh = send_code(turn, sms, phone=pending.phone, customer_id=customer_id)
        if fresh is None:
            turn.say(RATE_LIMITED)
            return dict(stop)
        turn.say("utter_otp_expired", masked_phone=mask_mobile(pending.phone))
        return {code_slot: None, "otp_state": fresh.to_slot()}
    if check.verdict == "locked":
        turn.say("utter_otp_locked")
        return dict(stop)
    return {code_slot: None, phone_slot: None, "otp_state": None}


def answers_the_code(turn: Turn, code_slot: str, phone_slot: str) -> bool:
    """Whether the message answers the code question: the code slot was the one asked for, and
    the message did not bring a new number as well (that one gets a code of its own)."""
    asked = turn.tracker.get_slot("requested_slot") == code_slot
    return asked and phone_slot not in turn.tracker.slots_to_validate()


# Ends identify_form quietly (action_resume_after_identify has nothing left to answer).
IDENTIFY_STOP: dict[str, Any] = {
    "requested_slot": None,
    "identify_phone": None,
    "otp_code": None,
    "otp_state": None,
    "pending_intent": None,
    "pending_text": None,
}


class ValidateIdentifyForm(CareFormValidation):
    form = "identify_form"
    sms: SmsProvider = SMS

    def on_activation(self, turn: Turn) -> dict[str, Any]:
        """Remember what the customer wanted, to answer it once they are identified."""
        message = turn.tracker.latest_message
        return {
            "pending_intent": (message.get("intent") or {}).get("name"),
            "pending_text": message.get("text"),
            "otp_state": None,
        }

    def validate_identify_phone(self, value: Any, turn: Turn) -> dict[str, Any]:
        """Any well-formed number "gets a code": a member's by SMS, anyone else's nowhere."""
        phone = normalize_mobile(str(value or ""))
        if phone is None:
            turn.say("utter_identify_phone_invalid")
            return {"identify_phone": None}
        pending = send_code(turn, self.sms, phone=phone, customer_id=owner_id(turn, phone))
        if pending is None:
            turn.say(RATE_LIMITED)
            return IDENTIFY_STOP
        return {"identify_phone": mask_mobile(phone), "otp_state": pending.to_slot()}

    def validate_otp_code(self, value: Any, turn: Turn) -> dict[str, Any]:
        if not answers_the_code(turn, "otp_code", "identify_phone"):
            return {"otp_code": None}
        pending = PendingCode.from_slot(turn.tracker.get_slot("otp_state"))
        if pending is None:
            return {"otp_code": None, "identify_phone": None, "otp_state": None}
        check = check_code(turn, pending, value)
        if check.verdict == "ok" and check.customer_id is not None:
            return self.verified(turn, check.customer_id)
        return not_verified(
            turn,
            self.sms,
            pending,
            check,
            code_slot="otp_code",
            phone_slot="identify_phone",
            customer_id=owner_id(turn, pending.phone),
            stop=IDENTIFY_STOP,
        )

    def verified(self, turn: Turn, customer_id: int) -> dict[str, Any]:
        customer = get_customer(turn.session, customer_id=customer_id)
        kind = verified_kind(conversation_channel(turn))
        try:
            link_identity(
                turn.session,
                clock=turn.clock,
                customer_id=customer.id,
                kind=kind,
                value=identity_value(kind, turn.conversation_id) or turn.conversation_id,
            )
        except Conflict:
            log.warning("conversation %s is linked to another customer", turn.conversation_id)
            turn.say("utter_identify_not_possible")
            return IDENTIFY_STOP
        attach_conversation(turn, customer)
        turn.say("utter_identified", name=customer.name)
        slots = {event["name"]: event["value"] for event in identified_slots(customer)}
        return {"otp_code": "verified", "otp_state": None, **slots}


def owner_id(turn: Turn, phone: str) -> int | None:
    customer = find_customer(turn.session, phone=phone)
    return customer.id if customer is not None else None


# What the identify form's validation may already have said this turn instead of the question.
CODE_ANSWERS = ("utter_otp_wrong", "utter_otp_expired")


def said_this_turn(events: list[dict[str, Any]], responses: tuple[str, ...]) -> bool:
    """Whether the bot said one of `responses` since the customer's latest message."""
    for event in reversed(events):
        if event.get("event") == "user":
            return False
        if (event.get("metadata") or {}).get("utter_action") in responses:
            return True
    return False


class ActionAskOtpCode(CareAction):
    """The form's question for the code. After "验证码不正确，请再试一次" or "已重新发送" it
    says nothing more: repeating "验证码已发送到…" would suggest a new code was sent."""

    def name(self) -> str:
        return "action_ask_otp_code"

    def act(self, turn: Turn) -> Events:
        if not said_this_turn(turn.tracker.events, CODE_ANSWERS):
            turn.say("utter_ask_otp_code")
        return []
