"""complaint: empathise, open a ticket whose priority follows the customer's tier and anger,
give the ticket number and offer a person."""

from __future__ import annotations

from actions.base import CareAction, Events, Turn
from actions.rules.complaints import (
    complaint_priority,
    complaint_sentiment,
    mentions_external_threat,
)
from actions.rules.orders import order_ids_in
from crm_store.orders import find_order
from crm_store.tickets import open_ticket

SUBJECT_LENGTH = 30


def complaint_text(turn: Turn) -> str:
    """The complaint as the customer wrote it: the message that started identification, if the
    customer had to identify first, else the latest message."""
    pending = turn.tracker.get_slot("pending_text")
    if turn.tracker.get_slot("pending_intent") == "complaint" and pending:
        return str(pending)
    return str(turn.tracker.latest_message.get("text") or "")


def named_order(turn: Turn, customer_id: int, text: str) -> str | None:
    """The customer's own order the complaint names, if it names one: the ticket keeps it."""
    for order_id in order_ids_in(text):
        order = find_order(turn.session, order_id=order_id)
        if order is not None and order.customer_id == customer_id:
            return order.id
    return None


def answer_complaint(turn: Turn) -> Events:
    customer = turn.customer()
    if customer is None:
        return []
    text = complaint_text(turn)
    priority = complaint_priority(
        customer.tier, complaint_sentiment(text), threat=mentions_external_threat(text)
    )
    ticket = open_ticket(
        turn.session,
        clock=turn.clock,
        customer_id=customer.id,
        kind="complaint",
        subject=text[:SUBJECT_LENGTH] or "complaint",
        description=text or "-",
        priority=priority,
        order_id=named_order(turn, customer.id, text),
        conversation_id=None,
    )
    turn.say("utter_complaint_ticket", ticket_id=ticket.id, due=turn.local(ticket.sla_due_at))
    return []


class ActionOpenComplaint(CareAction):
    def name(self) -> str:
        return "action_open_complaint"

    def act(self, turn: Turn) -> Events:
        return answer_complaint(turn)
