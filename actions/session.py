"""A new conversation session: carry the slots over, recognise the customer by their channel
identity, and greet a returning customer by name with anything pending."""

from __future__ import annotations

from typing import Any

from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet

from actions.base import CareAction, Events, Turn
from actions.identity import attach_conversation, identified_slots, known_customer
from actions.orders import describe_shipment
from crm_store.customers import Customer
from crm_store.orders import list_orders
from crm_store.tickets import list_tickets

PENDING_TICKET_STATUSES = ("open", "in_progress", "waiting_customer")


def carried_over_slots(turn: Turn) -> list[dict[str, Any]]:
    return [
        SlotSet(name, value)
        for name, value in turn.tracker.slots.items()
        if name not in ("session_started_metadata", "requested_slot") and value is not None
    ]


def greet_by_name(turn: Turn, customer: Customer) -> None:
    turn.say("utter_welcome_back", name=customer.name)
    tickets = list_tickets(turn.session, customer_id=customer.id)
    for ticket in tickets:
        if ticket.status in PENDING_TICKET_STATUSES:
            due = turn.local(ticket.sla_due_at)
            turn.say("utter_pending_ticket", ticket_id=ticket.id, subject=ticket.subject, due=due)
            break
    for order in list_orders(turn.session, customer_id=customer.id, limit=5):
        if order.status == "shipped" and order.shipments:
            turn.say(
                "utter_pending_parcel", order_id=order.id, event=describe_shipment(turn, order)
            )
            break


class ActionSessionStart(CareAction):
    def name(self) -> str:
        return "action_session_start"

    def act(self, turn: Turn) -> Events:
        events: Events = [SessionStarted(), *carried_over_slots(turn)]
        customer = known_customer(turn)
        if customer is not None:
            attach_conversation(turn, customer)
            events += identified_slots(customer)
            greet_by_name(turn, customer)
        return [*events, ActionExecuted("action_listen")]


def welcomed_at_session_start(events: list[dict[str, Any]]) -> bool:
    """Whether this session's start just welcomed the customer by name and this message (a
    greeting, or a WeChat follow) is the first thing they said since."""
    said = 0
    for event in reversed(events):
        kind = event.get("event")
        if kind == "user":
            said += 1
            if said > 1:
                return False
        elif kind == "bot":
            if (event.get("metadata") or {}).get("utter_action") == "utter_welcome_back":
                return True
        elif kind == "session_started":
            return False
    return False


class ActionGreet(CareAction):
    """ "你好": by name when we know the customer, and not twice in a row."""

    def name(self) -> str:
        return "action_greet"

    def act(self, turn: Turn) -> Events:
        customer = turn.customer()
        if customer is None:
            turn.say("utter_greet")
        elif not welcomed_at_session_start(turn.tracker.events):
            turn.say("utter_welcome_back", name=customer.name)
        return []
