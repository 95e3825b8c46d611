"""return_refund: a form for order, item and reason; the return window comes from the order's
delivery; an allowed request opens a ticket."""

from __future__ import annotations

from typing import Any

from rasa_sdk.events import ActiveLoop, SlotSet

from actions.base import CareAction, Events, Turn
from actions.forms import CareFormValidation
from actions.orders import items_of
from actions.rules.orders import expected_delivery
from actions.rules.returns import (
    classify_return_reason,
    delivery_date,
    item_named,
    return_window,
    stops_the_return,
)
from crm_store.clock import BUSINESS_TZ  # the shop's calendar: delivery dates, return windows
from crm_store.orders import Order, find_order
from crm_store.tickets import open_ticket


def customers_order(turn: Turn, order_id: str) -> Order | None:
    order = find_order(turn.session, order_id=order_id.strip().upper())
    return order if order is not None and order.customer_id == turn.customer_id else None


def delivered_on(order: Order) -> Any:
    """The delivery scan's date; for an order marked delivered without one, the carrier's usual
    arrival after the order was placed."""
    scanned = delivery_date(order.shipments, BUSINESS_TZ)
    if scanned is None and order.status in ("delivered", "completed"):
        placed = order.placed_at.astimezone(BUSINESS_TZ)
        return expected_delivery(order.carrier, placed, placed.date())
    return scanned


class ValidateReturnForm(CareFormValidation):
    form = "return_form"

    def validate_order_id(self, value: Any, turn: Turn) -> dict[str, Any]:
        order = customers_order(turn, str(value or ""))
        if order is None:
            turn.say("utter_order_not_found", order_id=str(value or "").strip())
            return {"order_id": None}
        if order.status in ("pending", "paid", "shipped"):
            turn.say("utter_return_not_delivered", order_id=order.id)
            return {"order_id": None}
        if order.status in ("cancelled", "refunded"):
            turn.say("utter_return_closed", order_id=order.id)
            return {"order_id": None}
        if len(order.items) == 1:
            return {"order_id": order.id, "return_item": order.items[0].name}
        return {"order_id": order.id}

    def validate_return_item(self, value: Any, turn: Turn) -> dict[str, Any]:
        order = customers_order(turn, turn.tracker.get_slot("order_id") or "")
        text = str(value or "")
        if order is None:
            return {"return_item": None}
        named = item_named(text, [item.name for item in order.items])
        if named is not None:
            return {"return_item": named}
        turn.say("utter_return_item_unknown", item=text)
        return {"return_item": None}


class ActionAskReturnItem(CareAction):
    """The form's question for the item names the order's items (Rasa prefers
    `action_ask_<slot>` to `utter_ask_<slot>`, which could not fill them in)."""

    def name(self) -> str:
        return "action_ask_return_item"

    def act(self, turn: Turn) -> Events:
        order = customers_order(turn, turn.tracker.get_slot("order_id") or "")
        if order is not None:
            buttons = [{"title": item.name, "payload": item.name} for item in order.items]
            turn.dispatcher.utter_message(
                response="utter_ask_return_item", items=items_of(order), buttons=buttons
            )
        return []


RETURN_SLOTS = ("order_id", "return_item", "return_reason")


def open_return(turn: Turn, reason: str) -> None:
    """Opens the return ticket for the order and item in the slots, if the window allows."""
    order = customers_order(turn, turn.tracker.get_slot("order_id") or "")
    customer = turn.customer()
    if order is None or customer is None:
        return
    today = turn.now.astimezone(BUSINESS_TZ).date()
    decision = return_window(
        order.status, delivered_on(order), today, classify_return_reason(reason)
    )
    if not decision.allowed:
        turn.say(
            "utter_return_expired",
            order_id=order.id,
            window=decision.window_days or 7,
            days_over=decision.days_over or 0,
        )
        return
    item = turn.tracker.get_slot("return_item")
    ticket = open_ticket(
        turn.session,
        clock=turn.clock,
        customer_id=customer.id,
        kind="return",
        subject=f"{order.id} {item}"[:128],
        description=reason or "-",
        priority="normal",
        order_id=order.id,
    )
    until = today.fromordinal(today.toordinal() + (decision.days_left or 0))
    turn.say(
        "utter_return_ticket",
        ticket_id=ticket.id,
        until=f"{until.month}月{until.day}日",
        due=turn.local(ticket.sla_due_at),
    )


class ActionOpenReturn(CareAction):
    def name(self) -> str:
        return "action_open_return"

    def act(self, turn: Turn) -> Events:
        open_return(turn, str(turn.tracker.get_slot("return_reason") or ""))
        return [SlotSet(slot, None) for slot in RETURN_SLOTS]


class ActionStopReturnForm(CareAction):
    """A "no" inside return_form. Asked why, "不想要了" is the reason (it reads like a no to the
    NLU): the return is opened with it. Any other no, or "算了，不退了", stops the form."""

    def name(self) -> str:
        return "action_stop_return_form"

    def act(self, turn: Turn) -> Events:
        text = str(turn.tracker.latest_message.get("text") or "")
        asked_why = turn.tracker.get_slot("requested_slot") == "return_reason"
        if asked_why and not stops_the_return(text):
            open_return(turn, text)
        else:
            turn.say("utter_form_stopped")
        return [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            SlotSet("pending_intent", None),
            *(SlotSet(slot, None) for slot in RETURN_SLOTS),
        ]
