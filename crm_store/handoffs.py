"""Handoffs of a conversation to a human agent: waiting -> active -> closed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from crm_store._unique import try_insert
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, NotFound
from crm_store.interactions import ensure_conversation
from crm_store.models import CHANNELS, HANDOFF_STATES
from crm_store.models import Handoff as HandoffRow
from crm_store.validation import check_choice, check_text


@dataclass(frozen=True)
class Handoff:
    id: int
    conversation_id: str
    customer_id: int | None
    queue: str
    reason: str
    state: str
    agent_id: int | None
    requested_at: datetime
    accepted_at: datetime | None
    closed_at: datetime | None
    outcome: str | None
    priority: int = 0
    sender_id: str | None = None  # the Rasa sender id (conversation_id may be its hash)
    output_channel: str | None = None  # the Rasa channel an agent's reply goes through
    timeout_notified_at: datetime | None = None


def _record(row: HandoffRow) -> Handoff:
    return Handoff(
        row.id,
        row.conversation_id,
        row.customer_id,
        row.queue,
        row.reason,
        row.state,
        row.agent_id,
        row.requested_at,
        row.accepted_at,
        row.closed_at,
        row.outcome,
        row.priority or 0,
        row.sender_id,
        row.output_channel,
        row.timeout_notified_at,
    )


def _open(conversation_id: str) -> Select:
    """The conversation's open handoff: at most one (ix_handoffs_one_open_per_conversation)."""
    return select(HandoffRow).where(
        HandoffRow.conversation_id == conversation_id, HandoffRow.state != "closed"
    )


def find_open_handoff(session: Session, *, conversation_id: str) -> Handoff | None:
    row = session.scalars(_open(conversation_id)).first()
    return _record(row) if row else None


def request_handoff(
    session: Session,
    *,
    conversation_id: str,
    channel: str,
    reason: str,
    queue: str = "general",
    customer_id: int | None = None,
    route: Route | None = None,
    clock: Clock = utcnow,
) -> Handoff:
    """Queue the conversation for an agent; asking again while one is open returns that one.

    `route` says how urgent it is and how an agent's reply reaches the customer (Rasa's sender
    id and output channel); without it the handoff is queued at priority 0 and unreachable.

    Insert first, read after: the partial unique index on open handoffs refuses a second one, so
    of two concurrent requests the loser returns the winner's row; and on SQLite the insert takes
    the write lock before this function has read anything, so a concurrent request waits for it
    instead of failing on a stale snapshot. The insert is also refused while the conversation does
    not exist yet (a foreign key): it is then created and the insert tried once more.
    """
    fields = _checked(conversation_id, channel, queue, reason)
    conversation = partial(
        ensure_conversation,
        session,
        conversation_id=fields["conversation_id"],
        channel=channel,
        customer_id=customer_id,
        clock=clock,
    )
    row = _try_open(session, fields, route or Route(), clock)
    if row is None:
        open_one = find_open_handoff(session, conversation_id=fields["conversation_id"])
        if open_one is not None:
            return open_one
        conversation()  # nothing open refused the insert: the conversation was missing
        row = _try_open(session, fields, route or Route(), clock)
    if row is None:  # a concurrent request opened one meanwhile
        return _record(_open_row(session, fields["conversation_id"]))
    row.customer_id = conversation().customer_id  # attaches a newly known customer as well
    session.flush()
    return _record(row)


def _checked(conversation_id: str, channel: str, queue: str, reason: str) -> dict[str, str]:
    """Checked before anything is written, so bad input never leaves a half-made handoff."""
    check_choice(channel, CHANNELS, "channel")
    return {
        "conversation_id": check_text(conversation_id, "conversation id", 64),
        "queue": check_text(queue, "queue", 32),
        "reason": check_text(reason, "reason", 64),
    }


@dataclass(frozen=True)
class Route:
    """The queue priority of a handoff and where an agent's reply goes (Rasa's ids)."""

    priority: int = 0
    sender_id: str | None = None
    output_channel: str | None = None


def _try_open(
    session: Session, fields: dict[str, str], route: Route, clock: Clock
) -> HandoffRow | None:
    """A new waiting handoff, or None if the database refused it (in a savepoint)."""
    row = HandoffRow(
        **fields,
        state="waiting",
        requested_at=clock(),
        priority=route.priority,
        sender_id=route.sender_id,
        output_channel=route.output_channel,
    )
    return row if try_insert(session, row) else None


def _open_row(session: Session, conversation_id: str) -> HandoffRow:
    """The open handoff a concurrent request stored first."""
    row = session.scalars(_open(conversation_id)).first()
    if row is None:  # pragma: no cover - refused by yet another constraint
        raise Conflict(f"the handoff of {conversation_id} could not be recorded")
    return row


def accept_handoff(
    session: Session, *, handoff_id: int, agent_id: int, clock: Clock = utcnow
) -> Handoff:
    """An agent takes a waiting handoff; Conflict if another agent took it first."""
    result = session.execute(
        update(HandoffRow)
        .where(HandoffRow.id == handoff_id, HandoffRow.state == "waiting")
        .values(state="active", agent_id=agent_id, accepted_at=clock())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        _get(session, handoff_id)
        raise Conflict(f"handoff {handoff_id} is no longer waiting")
    return _record(_get(session, handoff_id))


def close_handoff(
    session: Session, *, handoff_id: int, outcome: str, clock: Clock = utcnow
) -> Handoff:
    row = _get(session, handoff_id)
    if row.state == "closed":
        return _record(row)
    row.state, row.outcome, row.closed_at = "closed", check_text(outcome, "outcome", 32), clock()
    session.flush()
    return _record(row)


def _get(session: Session, handoff_id: int) -> HandoffRow:
    row = session.get(HandoffRow, handoff_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no handoff {handoff_id}")
    return row


def get_handoff(session: Session, *, handoff_id: int) -> Handoff:
    return _record(_get(session, handoff_id))


def list_handoffs(
    session: Session, *, state: str = "waiting", queue: str | None = None, limit: int = 100
) -> list[Handoff]:
    """Oldest request first, the order agents should serve them in."""
    query = (
        select(HandoffRow)
        .where(HandoffRow.state == check_choice(state, HANDOFF_STATES, "handoff state"))
        .order_by(HandoffRow.requested_at, HandoffRow.id)
        .limit(limit)
    )
    if queue is not None:
        query = query.where(HandoffRow.queue == queue)
    return [_record(row) for row in session.scalars(query)]
