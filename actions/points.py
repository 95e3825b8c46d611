"""points_balance and redeem_points: the balance with what expires soon and the way to the next
tier; redemption is a form that confirms before it writes to the ledger, exactly once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn
from actions.forms import CareFormValidation
from actions.rules.points import next_tier_progress, parse_points_amount, redemption_check
from crm_store.errors import Conflict
from crm_store.orders import spend_since
from crm_store.points import points_balance, points_expiring_by, redeem_points

EXPIRY_NOTICE = timedelta(days=30)
POINTS_PER_YUAN = 100


def answer_points_balance(turn: Turn) -> Events:
    customer = turn.customer()
    if customer is None:
        return []
    balance = points_balance(turn.session, customer_id=customer.id)
    turn.say("utter_points_balance_personal", tier=customer.tier, balance=balance)
    until = turn.now + EXPIRY_NOTICE
    expiring = points_expiring_by(turn.session, customer_id=customer.id, until=until)
    if expiring > 0:
        turn.say("utter_points_expiring", points=expiring, date=turn.local(until, "%m月%d日"))
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
        """ "兑换500积分" already says how much."""
        amount = parse_points_amount(turn.tracker.latest_message.get("text") or "")
        return {"points_amount": str(amount)} if amount else {}

    def validate_points_amount(self, value: Any, turn: Turn) -> dict[str, Any]:
        amount = parse_points_amount(str(value or ""))
        if amount is None:
            turn.say("utter_points_amount_invalid")
            return {"points_amount": None}
        balance = points_balance(turn.session, customer_id=turn.customer_id or 0)
        decision = redemption_check(balance, amount)
        if decision.reason == "short":
            turn.say("utter_points_short", balance=balance, shortfall=decision.shortfall)
        elif decision.reason == "too_many":
            turn.say("utter_points_too_many")
        elif decision.reason == "not_positive":
            turn.say("utter_points_amount_invalid")
        if not decision.ok:
            return {"points_amount": None}
        return {"points_amount": str(amount)}


class ActionRedeemPoints(CareAction):
    """Runs once the form is complete: writes the redemption (or not) and clears the form."""

    def name(self) -> str:
        return "action_redeem_points"

    def act(self, turn: Turn) -> Events:
        reset = [SlotSet("points_amount", None), SlotSet("redeem_confirmed", None)]
        customer_id = turn.customer_id
        amount = parse_points_amount(turn.tracker.get_slot("points_amount") or "")
        if not turn.tracker.get_slot("redeem_confirmed") or customer_id is None or not amount:
            turn.say("utter_redeem_cancelled")
            return reset
        try:
            redeem_points(
                turn.session,
                clock=turn.clock,
                customer_id=customer_id,
                points=amount,
                reason=f"coupon:{turn.conversation_id[:40]}",
            )
        except Conflict:  # spent elsewhere meanwhile
            balance = points_balance(turn.session, customer_id=customer_id)
            turn.say("utter_points_short", balance=balance, shortfall=amount - balance)
            return reset
        balance = points_balance(turn.session, customer_id=customer_id)
        turn.say("utter_redeemed", points=amount, yuan=amount // POINTS_PER_YUAN, balance=balance)
        return reset
