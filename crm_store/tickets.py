"""Tickets: complaints and return/refund requests with priority, owner and an SLA due time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_store.audit import record_audit
from crm_store.clock import Clock, utcnow
from crm_store.errors import InvalidInput, NotFound
from crm_store.models import PRIORITIES, TICKET_KINDS, TICKET_STATUSES, StaffUser
from crm_store.models import Conversation as ConversationRow
from crm_store.models import Customer as CustomerRow
from crm_store.models import Order as OrderRow
from crm_store.models import Ticket as TicketRow
from crm_store.validation import check_choice, check_text

# Hours to resolve, by priority; a complaint is never given more than a day.
SLA_HOURS = {"urgent": 4, "high": 24, "normal": 48, "low": 120}
COMPLAINT_MAX_HOURS = 24
OPEN_STATUSES = ("open", "in_progress", "waiting_customer")


@dataclass(frozen=True)
class Ticket:
    id: int
    customer_id: int
    order_id: str | None
    conversation_id: str | None
    kind: str
    status: str
    priority: str
    owner_id: int | None
    subject: str
    description: str
    created_at: datetime
    updated_at: datetime
    sla_due_at: datetime
    resolved_at: datetime | None


def sla_due(created_at: datetime, *, kind: str, priority: str) -> datetime:
    hours = SLA_HOURS[check_choice(priority, PRIORITIES, "priority")]
    if check_choice(kind, TICKET_KINDS, "ticket kind") == "complaint":
        hours = min(hours, COMPLAINT_MAX_HOURS)
    return created_at + timedelta(hours=hours)


def _record(row: TicketRow) -> Ticket:
    return Ticket(
        row.id,
        row.customer_id,
        row.order_id,
        row.conversation_id,
        row.kind,
        row.status,
        row.priority,
        row.owner_id,
        row.subject,
        row.description,
        row.created_at,
        row.updated_at,
        row.sla_due_at,
        row.resolved_at,
    )


def open_ticket(
    session: Session,
    *,
    customer_id: int,
    kind: str,
    subject: str,
    description: str,
    priority: str = "normal",
    order_id: str | None = None,
    conversation_id: str | None = None,
    clock: Clock = utcnow,
) -> Ticket:
    now = clock()
    due = sla_due(now, kind=kind, priority=priority)
    _check_refs(session, customer_id, order_id, conversation_id)
    row = TicketRow(
        customer_id=customer_id,
        order_id=order_id,
        conversation_id=conversation_id,
        kind=kind,
        status="open",
        priority=priority,
        subject=check_text(subject, "subject", 128),
        description=check_text(description, "description", 4000),
        created_at=now,
        updated_at=now,
        sla_due_at=due,
    )
    session.add(row)
    session.flush()
    return _record(row)


def _check_refs(
    session: Session, customer_id: int, order_id: str | None, conversation_id: str | None
) -> None:
    if session.get(CustomerRow, customer_id) is None:
        raise NotFound(f"no customer {customer_id}")
    if conversation_id is not None and session.get(ConversationRow, conversation_id) is None:
        raise NotFound(f"no conversation {conversation_id}")
    if order_id is None:
        return
    order = session.get(OrderRow, order_id)
    if order is None:
        raise NotFound(f"no order {order_id}")
    if order.customer_id != customer_id:
        raise InvalidInput(f"order {order_id} belongs to another customer")


def _row(session: Session, ticket_id: int) -> TicketRow:
    row = session.get(TicketRow, ticket_id)
    if row is None:
        raise NotFound(f"no ticket {ticket_id}")
    return row


def get_ticket(session: Session, *, ticket_id: int) -> Ticket:
    return _record(_row(session, ticket_id))


def list_tickets(
    session: Session,
    *,
    customer_id: int | None = None,
    status: str | None = None,
    owner_id: int | None = None,
    limit: int = 100,
) -> list[Ticket]:
    """Most urgent (earliest SLA) first."""
    query = select(TicketRow).order_by(TicketRow.sla_due_at, TicketRow.id).limit(limit)
    if customer_id is not None:
        query = query.where(TicketRow.customer_id == customer_id)
    if status is not None:
        query = query.where(TicketRow.status == check_choice(status, TICKET_STATUSES, "status"))
    if owner_id is not None:
        query = query.where(TicketRow.owner_id == owner_id)
    return [_record(row) for row in session.scalars(query)]


def list_overdue_tickets(
    session: Session, *, clock: Clock = utcnow, limit: int = 100
) -> list[Ticket]:
    query = (
        select(TicketRow)
        .where(TicketRow.status.in_(OPEN_STATUSES), TicketRow.sla_due_at < clock())
        .order_by(TicketRow.sla_due_at, TicketRow.id)
        .limit(limit)
    )
    return [_record(row) for row in session.scalars(query)]


def assign_ticket(
    session: Session, *, ticket_id: int, owner_id: int, actor: str, clock: Clock = utcnow
) -> Ticket:
    row = _row(session, ticket_id)
    if session.get(StaffUser, owner_id) is None:
        raise NotFound(f"no staff user {owner_id}")
    before = row.owner_id
    row.owner_id, row.updated_at = owner_id, clock()
    if row.status == "open":
        row.status = "in_progress"
    record_audit(
        session,
        actor=actor,
        action="assign_ticket",
        entity="ticket",
        entity_id=ticket_id,
        changes={"owner_id": [before, owner_id]},
        clock=clock,
    )
    session.flush()
    return _record(row)


def describe_ticket(
    session: Session, *, ticket_id: int, description: str, clock: Clock = utcnow
) -> Ticket:
    """Replaces a ticket's description (a survey's comment that came after its follow-up
    opened on a low score)."""
    row = _row(session, ticket_id)
    row.description, row.updated_at = check_text(description, "description", 4000), clock()
    session.flush()
    return _record(row)


def set_ticket_status(
    session: Session, *, ticket_id: int, status: str, actor: str, clock: Clock = utcnow
) -> Ticket:
    row = _row(session, ticket_id)
    before, now = row.status, clock()
    row.status, row.updated_at = check_choice(status, TICKET_STATUSES, "status"), now
    row.resolved_at = (row.resolved_at or now) if status in ("resolved", "closed") else None
    record_audit(
        session,
        actor=actor,
        action="set_ticket_status",
        entity="ticket",
        entity_id=ticket_id,
        changes={"status": [before, status]},
        clock=clock,
    )
    session.flush()
    return _record(row)
