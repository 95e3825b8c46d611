"""points_balance and redeem_points: the balance with what expires soon and the way to the next
tier; redemption is a form that confirms before it writes to the ledger, exactly once.

Exactly once under a timeout: Rasa gives up on an action after CAREBOT_ACTION_TIMEOUT, drops
its events and apologises, while the action may still commit its spend. The amount the form
accepts is tagged with a redemption id (slot `redemption_id`) that only action_redeem_points
clears when it answers; the spend is written under that id (the ledger's unique key), so a
retry of the same redemption, whether the first spend finished, is still running, or never
happened, spends once, and the customer is told the first result (docs/care_dialogues.md).
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn
from actions.forms import CareFormValidation
from actions.rules.points import next_tier_progress, parse_points_amount, redemption_check
from crm_store.errors import Conflict
from crm_store.orders import spend_since
from crm_store.points import (
    PointsEntry,
    find_keyed_entry,
    points_balance,
    points_expiry_schedule,
    redeem_points,
)

EXPIRY_NOTICE = timedelta(days=30)
POINTS_PER_YUAN = 100
# Ends redeem_form; action_redeem_points then says nothing (the validation said why).
REDEEM_STOP: dict[str, Any] = {
    "requested_slot": None,
    "points_amount": None,
    "redeem_confirmed": None,
}
REDEMPTION_ID = re.compile(r"[0-9a-f]{32}")


def redemption_key(turn: Turn) -> str | None:
    """The ledger key of the redemption this conversation is confirming, if any."""
    value = turn.tracker.get_slot("redemption_id")
    if not isinstance(value, str) or not REDEMPTION_ID.fullmatch(value):
        return None
    return f"redeem:{value}"


def redemption_id(turn: Turn) -> str:
    """The id of the redemption an accepted amount belongs to: the one still unanswered (a
    retry after Rasa gave up on action_redeem_points), else a new one."""
    key = redemption_key(turn)
    return key.removeprefix("redeem:") if key is not None else secrets.token_hex(16)


def tell_redeemed(turn: Turn, entry: PointsEntry) -> None:
    points = -entry.delta
    balance = points_balance(turn.session, customer_id=entry.customer_id)
    turn.say("utter_redeemed", points=points, yuan=points // POINTS_PER_YUAN, balance=balance)


def tell_expiring_points(turn: Turn, customer_id: int) -> None:
    """What expires within EXPIRY_NOTICE, each on the day the ledger says (the customer's local
    day), never a date of our own: points earned on several days expire on several days."""
    schedule = points_expiry_schedule(
        turn.session, customer_id=customer_id, until=turn.now + EXPIRY_NOTICE
    )
    by_day: dict[tuple[str, bool], int] = {}
    for expiry in schedule:
        key = (turn.local(expiry.expires_at, "%m月%d日"), expiry.expires_at <= turn.now)
        by_day[key] = by_day.get(key, 0) + expiry.points
    for (day, past), points in by_day.items():
        response = "utter_points_expired_unsettled" if past else "utter_points_expiring"
        turn.say(response, points=points, date=day)


def answer_points_balance(turn: Turn) -> Events:
    customer = turn.customer()
    if customer is None:
        return []
    balance = points_balance(turn.session, customer_id=customer.id)
    turn.say("utter_points_balance_personal", tier=customer.tier, balance=balance)
    tell_expiring_points(turn, customer.id)
    spent = spend_since(turn.session, customer_id=customer.id, since=turn.now - timedelta(365))
    progress = next_tier_progress(customer.tier, spent)
    if progress is None:
        turn.say("utter_tier_top")
    else:
        yuan = (progress.cents_needed + 99) // 100
        turn.say("utter_tier_progress", amount=yuan, next_tier=progress.next_tier)
    return []


class ActionPointsBalance(CareAction):
    def name(self) -> str:
        return "action_points_balance"

    def act(self, turn: Turn) -> Events:
        return answer_points_balance(turn)


class ValidateRedeemForm(CareFormValidation):
    form = "redeem_form"

    def on_activation(self, turn: Turn) -> dict[str, Any]:
        """With nothing to redeem the customer hears so at once, instead of being asked how
        much. "兑换500积分" already says how much: the amount is validated like an answer."""
        if turn.customer_id is None:  # the rules start this form for identified customers only
            return dict(REDEEM_STOP)
        earlier = self.answered_late(turn, turn.customer_id)
        if earlier is not None:  # the customer is retrying a redemption that went through
            tell_redeemed(turn, earlier)
            return {**REDEEM_STOP, "redemption_id": None}
        if not self.has_points(turn, turn.customer_id):
            return dict(REDEEM_STOP)
        amount = parse_points_amount(redeem_request_text(turn))
        return {"points_amount": str(amount)} if amount is not None else {}

    def answered_late(self, turn: Turn, customer_id: int) -> PointsEntry | None:
        """The spend of the redemption whose answer the customer never got: action_redeem_points
        wrote it after Rasa had given up waiting (and dropped the events that clear the id)."""
        key = redemption_key(turn)
        if key is None:
            return None
        return find_keyed_entry(turn.session, customer_id=customer_id, idempotency_key=key)

    def has_points(self, turn: Turn, customer_id: int) -> bool:
        balance = points_balance(turn.session, customer_id=customer_id)
        if balance <= 0:
            turn.say("utter_points_none", balance=balance)
        return balance > 0

    def validate_points_amount(self, value: Any, turn: Turn) -> dict[str, Any]:
        customer_id = turn.customer_id
        if customer_id is None or not self.has_points(turn, customer_id):
            return dict(REDEEM_STOP)
        amount = parse_points_amount(str(value or ""))
        if amount is None:
            turn.say("utter_points_amount_invalid")
            return {"points_amount": None}
        balance = points_balance(turn.session, customer_id=customer_id)
        decision = redemption_check(balance, amount)
        if decision.reason == "short":
            turn.say("utter_points_short", balance=balance, shortfall=decision.shortfall)
        elif decision.reason == "too_many":
            turn.say("utter_points_too_many")
        elif decision.reason == "not_positive":
            turn.say("utter_points_amount_invalid")
        if not decision.ok:
            return {"points_amount": None}
        # Always confirmed anew: a confirmation left over from an unanswered attempt is not one.
        return {
            "points_amount": str(amount),
            "redemption_id": redemption_id(turn),
            "redeem_confirmed": None,
        }


def redeem_request_text(turn: Turn) -> str:
    """The words of the latest request to redeem: the message that started the form, or, when
    the form starts after identification, the request made before it (the latest message is
    then the one-time code, whose digits are no amount)."""
    for event in reversed(turn.tracker.events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent == "redeem_points":
            return str(event.get("text") or "")
    return ""


class ActionRedeemPoints(CareAction):
    """Runs once the form is complete: writes the redemption (or not) and clears the form."""

    def name(self) -> str:
        return "action_redeem_points"

    def act(self, turn: Turn) -> Events:
        reset = [
            SlotSet("points_amount", None),
            SlotSet("redeem_confirmed", None),
            SlotSet("redemption_id", None),
        ]
        customer_id = turn.customer_id
        amount = parse_points_amount(turn.tracker.get_slot("points_amount") or "")
        if customer_id is None or not amount:
            return reset  # the validation ended the form and said why
        if not turn.tracker.get_slot("redeem_confirmed"):
            turn.say("utter_redeem_cancelled")
            return reset
        try:
            entry = redeem_points(
                turn.session,
                clock=turn.clock,
                customer_id=customer_id,
                points=amount,
                reason=f"coupon:{turn.conversation_id[:40]}",
                idempotency_key=redemption_key(turn),
            )
        except Conflict:  # spent elsewhere meanwhile
            balance = points_balance(turn.session, customer_id=customer_id)
            turn.say("utter_points_short", balance=balance, shortfall=amount - balance)
            return reset
        tell_redeemed(turn, entry)  # a retry of this redemption: the first spend's result
        return reset
