"""The staff console's queue: priority, claim, transfer, take-over, close, and the wait timeout.

A handoff is `waiting` until an agent claims it (`active`, with `agent_id`) and `closed` with an
outcome. Every state change is one conditional UPDATE, so of two agents claiming the same
handoff exactly one wins and the other gets `Conflict`; every change a person makes is written
to the audit log in the same transaction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from statistics import median
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm_store.audit import record_audit
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.handoffs import Handoff, Route, accept_handoff, get_handoff, request_handoff
from crm_store.models import TIERS
from crm_store.models import Customer as CustomerRow
from crm_store.models import Handoff as HandoffRow
from crm_store.models import StaffUser as StaffRow
from crm_store.validation import check_choice

# Why a conversation was handed over, and how much that moves it up the queue.
REASON_WEIGHTS = {
    "complaint": 3,
    "detractor": 3,
    "fallback": 1,
    "customer_request": 0,
    "agent_initiated": 0,
}
TIER_WEIGHT = 10  # a tier outranks any reason: a diamond member's question before a complaint
# How an agent may close a handoff; the bot itself closes with the last two.
CONSOLE_OUTCOMES = ("resolved", "ticket_opened", "call_back")
CUSTOMER_OUTCOMES = ("message_left", "returned_to_bot")
DEFAULT_WAIT_MINUTES = 2.0  # the first estimate, before any handoff was ever accepted
MINUTES_PER_CUSTOMER_AHEAD = 2.0


@dataclass(frozen=True)
class QueueEntry:
    """A handoff as the queue shows it: who is waiting and for how long."""

    handoff: Handoff
    customer_name: str | None
    tier: str | None
    waited: timedelta


def priority_for(tier: str | None, reason: str) -> int:
    """Higher first: the member's tier, then the reason (a complaint before a plain request)."""
    rank = TIERS.index(tier) if tier in TIERS else 0
    return rank * TIER_WEIGHT + REASON_WEIGHTS.get(reason, 0)


def estimate_wait_minutes(ahead: int, recent_waits: Sequence[timedelta]) -> int:
    """Whole minutes until an agent picks up: the median recent wait plus the queue ahead."""
    base = (
        median(wait.total_seconds() for wait in recent_waits) / 60
        if recent_waits
        else DEFAULT_WAIT_MINUTES
    )
    return max(1, math.ceil(base + ahead * MINUTES_PER_CUSTOMER_AHEAD))


def actor_of(staff_id: int) -> str:
    """The audit log's name for a staff member."""
    return f"staff:{staff_id}"


def _waiting_order() -> Any:
    return (HandoffRow.priority.desc(), HandoffRow.requested_at, HandoffRow.id)


def list_queue(session: Session, *, clock: Clock = utcnow, limit: int = 200) -> list[QueueEntry]:
    """Waiting handoffs, most urgent first, then the longest wait."""
    query = (
        select(HandoffRow, CustomerRow.name, CustomerRow.tier)
        .outerjoin(CustomerRow, CustomerRow.id == HandoffRow.customer_id)
        .where(HandoffRow.state == "waiting")
        .order_by(*_waiting_order())
        .limit(limit)
    )
    now = clock()
    return [
        QueueEntry(get_handoff(session, handoff_id=row.id), name, tier, now - row.requested_at)
        for row, name, tier in session.execute(query)
    ]


def list_live(
    session: Session, *, agent_id: int | None = None, clock: Clock = utcnow
) -> list[QueueEntry]:
    """Active handoffs (one agent's, or everyone's for a supervisor), oldest first."""
    query = (
        select(HandoffRow, CustomerRow.name, CustomerRow.tier)
        .outerjoin(CustomerRow, CustomerRow.id == HandoffRow.customer_id)
        .where(HandoffRow.state == "active")
        .order_by(HandoffRow.accepted_at, HandoffRow.id)
    )
    if agent_id is not None:
        query = query.where(HandoffRow.agent_id == agent_id)
    now = clock()
    return [
        QueueEntry(get_handoff(session, handoff_id=row.id), name, tier, now - row.requested_at)
        for row, name, tier in session.execute(query)
    ]


def count_ahead(session: Session, *, handoff: Handoff) -> int:
    """Waiting handoffs an agent will take before this one."""
    same = HandoffRow.priority == handoff.priority
    earlier = (HandoffRow.requested_at < handoff.requested_at) | (
        (HandoffRow.requested_at == handoff.requested_at) & (HandoffRow.id < handoff.id)
    )
    before = (HandoffRow.priority > handoff.priority) | (same & earlier)
    query = select(func.count()).where(
        HandoffRow.state == "waiting", HandoffRow.id != handoff.id, before
    )
    return int(session.scalar(query) or 0)


def recent_waits(session: Session, *, limit: int = 20) -> list[timedelta]:
    """How long the last accepted handoffs waited for an agent."""
    query = (
        select(HandoffRow.requested_at, HandoffRow.accepted_at)
        .where(HandoffRow.accepted_at.is_not(None))
        .order_by(HandoffRow.accepted_at.desc())
        .limit(limit)
    )
    return [accepted - requested for requested, accepted in session.execute(query)]


def expected_wait_minutes(session: Session, *, handoff: Handoff) -> tuple[int, int]:
    """(customers ahead, estimated minutes) for the message that tells the customer."""
    ahead = count_ahead(session, handoff=handoff)
    return ahead, estimate_wait_minutes(ahead, recent_waits(session))


def claim_handoff(
    session: Session, *, handoff_id: int, agent_id: int, clock: Clock = utcnow
) -> Handoff:
    """An agent takes a waiting handoff; Conflict if someone else was faster."""
    handoff = accept_handoff(session, handoff_id=handoff_id, agent_id=agent_id, clock=clock)
    _audit(session, agent_id, "claim_handoff", handoff_id, {"state": ["waiting", "active"]}, clock)
    return handoff


def transfer_handoff(
    session: Session,
    *,
    handoff_id: int,
    from_agent_id: int | None,
    to_agent_id: int,
    actor_id: int,
    clock: Clock = utcnow,
) -> Handoff:
    """Hand an active conversation to another agent; `from_agent_id` None: whoever holds it."""
    _active_staff(session, to_agent_id)
    condition = [HandoffRow.state == "active"]
    if from_agent_id is not None:
        condition.append(HandoffRow.agent_id == from_agent_id)
    before = get_handoff(session, handoff_id=handoff_id)
    _change(session, handoff_id, condition, {"agent_id": to_agent_id}, "is not yours to transfer")
    changes = {"agent_id": [before.agent_id, to_agent_id]}
    _audit(session, actor_id, "transfer_handoff", handoff_id, changes, clock)
    return get_handoff(session, handoff_id=handoff_id)


def take_over_handoff(
    session: Session, *, handoff_id: int, supervisor_id: int, clock: Clock = utcnow
) -> Handoff:
    """A supervisor takes a waiting or active conversation for themself."""
    before = get_handoff(session, handoff_id=handoff_id)
    values: dict[str, Any] = {"agent_id": supervisor_id, "state": "active"}
    if before.accepted_at is None:
        values["accepted_at"] = clock()
    _change(session, handoff_id, [HandoffRow.state != "closed"], values, "is closed")
    changes = {"agent_id": [before.agent_id, supervisor_id], "state": [before.state, "active"]}
    _audit(session, supervisor_id, "take_over_handoff", handoff_id, changes, clock)
    return get_handoff(session, handoff_id=handoff_id)


def start_agent_handoff(
    session: Session,
    *,
    conversation_id: str,
    channel: str,
    route: Route,
    agent_id: int,
    customer_id: int | None = None,
    clock: Clock = utcnow,
) -> Handoff:
    """An agent picks a conversation from the live list: a handoff that is theirs at once."""
    handoff = request_handoff(
        session,
        conversation_id=conversation_id,
        channel=channel,
        reason="agent_initiated",
        customer_id=customer_id,
        route=route,
        clock=clock,
    )
    if handoff.state == "waiting":
        return claim_handoff(session, handoff_id=handoff.id, agent_id=agent_id, clock=clock)
    if handoff.agent_id != agent_id:
        raise Conflict(f"conversation {conversation_id} is already with another agent")
    return handoff


def close_by_agent(
    session: Session,
    *,
    handoff_id: int,
    outcome: str,
    agent_id: int,
    any_agent: bool = False,
    clock: Clock = utcnow,
) -> Handoff:
    """The agent holding it (or a supervisor: `any_agent`) closes an active handoff."""
    check_choice(outcome, CONSOLE_OUTCOMES, "outcome")
    condition = [HandoffRow.state == "active"]
    if not any_agent:
        condition.append(HandoffRow.agent_id == agent_id)
    values = {"state": "closed", "outcome": outcome, "closed_at": clock()}
    _change(session, handoff_id, condition, values, "is not an active conversation of yours")
    changes = {"state": ["active", "closed"], "outcome": [None, outcome]}
    _audit(session, agent_id, "close_handoff", handoff_id, changes, clock)
    return get_handoff(session, handoff_id=handoff_id)


def close_by_customer(
    session: Session, *, handoff_id: int, outcome: str, clock: Clock = utcnow
) -> Handoff | None:
    """The customer stops waiting (a message left, or back to the bot); None if an agent has
    picked the conversation up meanwhile, which then stays with the agent."""
    check_choice(outcome, CUSTOMER_OUTCOMES, "outcome")
    result = session.execute(
        update(HandoffRow)
        .where(HandoffRow.id == handoff_id, HandoffRow.state == "waiting")
        .values(state="closed", outcome=outcome, closed_at=clock())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        return None
    record_audit(
        session,
        actor="customer",
        action="close_handoff",
        entity="handoff",
        entity_id=handoff_id,
        changes={"state": ["waiting", "closed"], "outcome": [None, outcome]},
        clock=clock,
    )
    return get_handoff(session, handoff_id=handoff_id)


def list_due_timeouts(session: Session, *, wait: timedelta, clock: Clock = utcnow) -> list[Handoff]:
    """Waiting handoffs nobody picked up within `wait` whose customer has not been told yet.

    Only conversations that can be reached (a known sender and channel) are listed.
    """
    query = (
        select(HandoffRow.id)
        .where(
            HandoffRow.state == "waiting",
            HandoffRow.timeout_notified_at.is_(None),
            HandoffRow.sender_id.is_not(None),
            HandoffRow.output_channel.is_not(None),
            HandoffRow.requested_at <= clock() - wait,
        )
        .order_by(HandoffRow.requested_at)
    )
    return [get_handoff(session, handoff_id=id_) for id_ in session.scalars(query)]


def mark_timeout_notified(session: Session, *, handoff_id: int, clock: Clock = utcnow) -> bool:
    """Claims the "nobody picked up" message for one notifier; False if it is already sent or
    an agent has claimed the handoff meanwhile."""
    result = session.execute(
        update(HandoffRow)
        .where(
            HandoffRow.id == handoff_id,
            HandoffRow.state == "waiting",
            HandoffRow.timeout_notified_at.is_(None),
        )
        .values(timeout_notified_at=clock())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def _change(
    session: Session,
    handoff_id: int,
    condition: list[Any],
    values: dict[str, Any],
    refusal: str,
) -> None:
    """One conditional UPDATE; NotFound or Conflict when no row matched."""
    result = session.execute(
        update(HandoffRow)
        .where(HandoffRow.id == handoff_id, *condition)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        get_handoff(session, handoff_id=handoff_id)  # NotFound if it does not exist at all
        raise Conflict(f"handoff {handoff_id} {refusal}")


def _active_staff(session: Session, staff_id: int) -> None:
    row = session.get(StaffRow, staff_id)
    if row is None:
        raise NotFound(f"no staff user {staff_id}")
    if not row.active:
        raise InvalidInput(f"staff user {staff_id} is deactivated")


def _audit(
    session: Session,
    staff_id: int,
    action: str,
    handoff_id: int,
    changes: dict[str, Any],
    clock: Clock,
) -> None:
    record_audit(
        session,
        actor=actor_of(staff_id),
        action=action,
        entity="handoff",
        entity_id=handoff_id,
        changes=changes,
        clock=clock,
    )


def find_last_closed_handoff(session: Session, *, conversation_id: str) -> Handoff | None:
    """The conversation's most recently closed handoff (whose agent a survey is about)."""
    query = (
        select(HandoffRow.id)
        .where(HandoffRow.conversation_id == conversation_id, HandoffRow.state == "closed")
        .order_by(HandoffRow.closed_at.desc(), HandoffRow.id.desc())
        .limit(1)
    )
    handoff_id = session.scalar(query)
    return get_handoff(session, handoff_id=handoff_id) if handoff_id is not None else None
