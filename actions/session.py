"""A new conversation session: carry the slots over, recognise the customer by their channel
identity, and greet a returning customer by name with anything pending."""

from __future__ import annotations

from typing import Any

from rasa_sdk.events import ActionExecuted, SessionStarted, SlotSet

from actions.base import CareAction, Events, Turn
from actions.identity import attach_conversation, identified_slots, known_customer
from actions.orders import describe_shipment
from actions.rules.orders import in_transit
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
            late = ticket.sla_due_at <= turn.now  # "before" a time gone by is no promise
            response = "utter_pending_ticket_overdue" if late else "utter_pending_ticket"
            turn.say(response, ticket_id=ticket.id, subject=ticket.subject, due=due)
            break
    for order in list_orders(turn.session, customer_id=customer.id, limit=5):
        if in_transit(order) and order.shipments:
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


def current_session(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of the latest session, the session start's own messages included.

    Rasa records a session start as `action_session_start` executed, then the messages the
    action said (the welcome), then the `session_started` and slot events it returned, then
    `action_listen`: the welcome comes *before* `session_started`, so the session begins at
    the action that started it."""
    starts = [i for i, event in enumerate(events) if event.get("event") == "session_started"]
    if not starts:
        return events
    start = starts[-1]
    while start > 0 and events[start - 1].get("event") == "bot":
        start -= 1
    if start > 0 and events[start - 1].get("name") == "action_session_start":
        start -= 1
    return events[start:]


def welcomed_at_session_start(events: list[dict[str, Any]]) -> bool:
    """Whether this session's start welcomed the customer by name and this message (a greeting,
    or a WeChat follow) is the first thing they said since."""
    session = current_session(events)
    said = sum(1 for event in session if event.get("event") == "user")
    welcomed = any(
        event.get("event") == "bot"
        and (event.get("metadata") or {}).get("utter_action") == "utter_welcome_back"
        for event in session
    )
    return welcomed and said <= 1


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
