from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from crm_helpers import a_customer
from sqlalchemy.orm import Session

from crm_store.audit import list_audit_entries
from crm_store.clock import ManualClock
from crm_store.errors import InvalidInput, NotFound
from crm_store.staff import create_staff_user
from crm_store.tickets import (
    assign_ticket,
    get_ticket,
    list_overdue_tickets,
    list_tickets,
    open_ticket,
    set_ticket_status,
    sla_due,
)

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("kind", "priority", "hours"),
    [
        ("return", "normal", 48),
        ("refund", "urgent", 4),
        ("complaint", "normal", 24),
        ("complaint", "low", 24),
        ("return", "low", 120),
    ],
)
def test_sla_due(kind: str, priority: str, hours: int) -> None:
    assert sla_due(T0, kind=kind, priority=priority) == T0 + timedelta(hours=hours)


def test_open_assign_and_resolve_a_ticket(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    agent = create_staff_user(session, username="a1", display_name="小张", role="agent")
    ticket = open_ticket(
        session,
        customer_id=customer.id,
        kind="complaint",
        subject="发货太慢",
        description="等了一周",
        priority="high",
        clock=clock,
    )
    assert (ticket.status, ticket.sla_due_at) == ("open", clock() + timedelta(hours=24))
    assigned = assign_ticket(
        session, ticket_id=ticket.id, owner_id=agent.id, actor="staff:9", clock=clock
    )
    assert (assigned.status, assigned.owner_id) == ("in_progress", agent.id)
    clock.advance(timedelta(hours=3))
    resolved = set_ticket_status(
        session, ticket_id=ticket.id, status="resolved", actor="staff:9", clock=clock
    )
    assert resolved.resolved_at == clock()
    closed = set_ticket_status(session, ticket_id=ticket.id, status="closed", actor="staff:9")
    assert closed.resolved_at == resolved.resolved_at
    actions = [e.action for e in list_audit_entries(session, entity="ticket", entity_id=ticket.id)]
    assert sorted(actions) == ["assign_ticket", "set_ticket_status", "set_ticket_status"]
    assert get_ticket(session, ticket_id=ticket.id) == closed


def test_overdue_tickets_are_open_past_their_sla(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    urgent = open_ticket(
        session,
        customer_id=customer.id,
        kind="refund",
        subject="退款",
        description="未到账",
        priority="urgent",
        clock=clock,
    )
    open_ticket(
        session,
        customer_id=customer.id,
        kind="return",
        subject="退货",
        description="坏了",
        clock=clock,
    )
    clock.advance(timedelta(hours=5))
    assert [t.id for t in list_overdue_tickets(session, clock=clock)] == [urgent.id]
    assert list_tickets(session, customer_id=customer.id)[0].id == urgent.id


@pytest.mark.parametrize(
    "kwargs",
    [{"kind": "praise"}, {"priority": "asap"}, {"subject": ""}],
)
def test_open_ticket_rejects_bad_input(session: Session, kwargs: dict) -> None:
    customer = a_customer(session)
    with pytest.raises(InvalidInput):
        open_ticket(
            session,
            **{
                "customer_id": customer.id,
                "kind": "return",
                "subject": "退货",
                "description": "坏了",
                **kwargs,
            },
        )


def test_open_ticket_checks_references(session: Session) -> None:
    customer = a_customer(session)
    with pytest.raises(NotFound):
        open_ticket(session, customer_id=999_999, kind="return", subject="s", description="d")
    with pytest.raises(NotFound):
        open_ticket(
            session,
            customer_id=customer.id,
            kind="return",
            subject="s",
            description="d",
            order_id="DD000000000000",
        )
    with pytest.raises(NotFound):
        open_ticket(
            session,
            customer_id=customer.id,
            kind="return",
            subject="s",
            description="d",
            conversation_id="nope",
        )
