"""The customer card beside a conversation: who they are and how things stand with them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from crm_store.analytics import Metrics, get_customer_metrics
from crm_store.customers import Customer, get_consents, get_customer
from crm_store.errors import NotFound
from crm_store.orders import Order, list_orders
from crm_store.surveys import SurveyResponse, list_survey_responses
from crm_store.tickets import OPEN_STATUSES, Ticket, list_tickets

RECENT = 5


@dataclass(frozen=True)
class CustomerCard:
    customer: Customer
    orders: list[Order]
    open_tickets: list[Ticket]
    surveys: list[SurveyResponse]
    metrics: Metrics | None
    consents: dict[str, bool]


def customer_card(session: Session, *, customer_id: int | None) -> CustomerCard | None:
    """None for an anonymous conversation (or a customer since deleted)."""
    if customer_id is None:
        return None
    try:
        customer = get_customer(session, customer_id=customer_id)
    except NotFound:
        return None
    return CustomerCard(
        customer,
        list_orders(session, customer_id=customer_id, limit=RECENT),
        [t for t in list_tickets(session, customer_id=customer_id) if t.status in OPEN_STATUSES],
        [s for s in list_survey_responses(session, customer_id=customer_id, limit=RECENT)],
        _metrics(session, customer_id),
        get_consents(session, customer_id=customer_id),
    )


def _metrics(session: Session, customer_id: int) -> Metrics | None:
    try:
        return get_customer_metrics(session, customer_id=customer_id)
    except NotFound:
        return None
