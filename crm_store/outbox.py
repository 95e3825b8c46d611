"""Care messages as an outbox: one row per customer x campaign x period, sent at most once.

pending -> sending (claimed, attempts + 1) -> sent | failed (retried until MAX_ATTEMPTS) | skipped
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, Select

from crm_store._unique import try_insert
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, NotFound
from crm_store.models import CHANNELS, OUTBOX_STATES
from crm_store.models import Campaign as CampaignRow
from crm_store.models import CareMessage as MessageRow
from crm_store.models import Customer as CustomerRow
from crm_store.validation import check_choice, check_text

MAX_ATTEMPTS = 5
REASON_MAX = 255


@dataclass(frozen=True)
class CareMessage:
    id: int
    customer_id: int
    campaign_id: int
    period: str
    channel: str
    state: str
    attempts: int
    reason: str | None
    scheduled_at: datetime
    sent_at: datetime | None


def _record(row: MessageRow) -> CareMessage:
    return CareMessage(
        row.id,
        row.customer_id,
        row.campaign_id,
        row.period,
        row.channel,
        row.state,
        row.attempts,
        row.reason,
        row.scheduled_at,
        row.sent_at,
    )


def _find(session: Session, customer_id: int, campaign_id: int, period: str) -> MessageRow | None:
    query = select(MessageRow).where(
        MessageRow.customer_id == customer_id,
        MessageRow.campaign_id == campaign_id,
        MessageRow.period == period,
    )
    return session.scalars(query).first()


def enqueue_care_message(
    session: Session,
    *,
    customer_id: int,
    campaign_key: str,
    period: str,
    channel: str,
    scheduled_at: datetime | None = None,
    clock: Clock = utcnow,
) -> tuple[CareMessage, bool]:
    """(message, created): the same customer, campaign and period never get a second row."""
    campaign_id = session.scalar(select(CampaignRow.id).where(CampaignRow.key == campaign_key))
    if campaign_id is None:
        raise NotFound(f"no campaign {campaign_key}")
    if session.get(CustomerRow, customer_id) is None:
        raise NotFound(f"no customer {customer_id}")
    period = check_text(period, "period", 32)
    existing = _find(session, customer_id, campaign_id, period)
    if existing is not None:
        return _record(existing), False
    now = clock()
    row = MessageRow(
        customer_id=customer_id,
        campaign_id=campaign_id,
        period=period,
        channel=check_choice(channel, CHANNELS, "channel"),
        state="pending",
        attempts=0,
        scheduled_at=scheduled_at or now,
        created_at=now,
        updated_at=now,
    )
    if try_insert(session, row):
        return _record(row), True
    winner = _find(session, customer_id, campaign_id, period)
    if winner is None:  # pragma: no cover - the insert failed for another reason
        raise Conflict("the care message could not be queued")
    return _record(winner), False


def claim_due_messages(
    session: Session, *, clock: Clock = utcnow, limit: int = 100
) -> list[CareMessage]:
    """Move due pending (or failed, retryable) messages to `sending` and return them, due first.

    One UPDATE claims them all under a fresh token, then the rows carrying it are read back, so
    two claimers never get the same message. PostgreSQL skips rows another claimer has locked
    (FOR UPDATE SKIP LOCKED in the subquery) and re-checks the guard on rows changed meanwhile.
    SQLite runs the statement under its single write lock, which it waits for (busy timeout)
    only while the transaction has read nothing yet: call this first in its transaction (BEGIN
    IMMEDIATE semantics), or a concurrent claim can fail with "database is locked".
    """
    now, token = clock(), secrets.token_hex(16)
    session.execute(
        update(MessageRow)
        .where(MessageRow.id.in_(_due_ids(now, limit)), *_claimable())
        .values(
            state="sending", attempts=MessageRow.attempts + 1, claim_token=token, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    claimed = session.scalars(
        select(MessageRow)
        .where(MessageRow.state == "sending", MessageRow.claim_token == token)
        .order_by(MessageRow.scheduled_at, MessageRow.id)
        .execution_options(populate_existing=True)
    )
    return [_record(row) for row in claimed]


def _claimable() -> tuple[ColumnElement, ...]:
    return (MessageRow.state.in_(("pending", "failed")), MessageRow.attempts < MAX_ATTEMPTS)


def _due_ids(now: datetime, limit: int) -> Select:
    """The next claimable ids, computed once: a materialized CTE.

    As a plain `IN (subquery)` PostgreSQL may run the subquery again for every outer row, and
    each run skips the rows this very statement has already claimed, so LIMIT stopped limiting
    (all 50 due rows went to one claim of 5). PostgreSQL skips rows another claimer has locked;
    SQLite ignores the locking clause and evaluates the subquery once anyway.
    """
    due = (
        select(MessageRow.id)
        .where(*_claimable(), MessageRow.scheduled_at <= now)
        .order_by(MessageRow.scheduled_at, MessageRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    return select(due.c.id)


def _get(session: Session, message_id: int) -> MessageRow:
    row = session.get(MessageRow, message_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no care message {message_id}")
    return row


def _finish(
    session: Session,
    message_id: int,
    state: str,
    reason: str | None,
    now: datetime,
) -> CareMessage:
    row = _get(session, message_id)
    if row.state == "sent":
        raise Conflict(f"care message {message_id} was already sent")
    row.state, row.updated_at = state, now
    row.reason = reason[:REASON_MAX] if reason else None
    if state == "sent":
        row.sent_at = now
    session.flush()
    return _record(row)


def mark_sent(session: Session, *, message_id: int, clock: Clock = utcnow) -> CareMessage:
    return _finish(session, message_id, "sent", None, clock())


def mark_failed(
    session: Session, *, message_id: int, reason: str, clock: Clock = utcnow
) -> CareMessage:
    """Failed now; claimed again later until MAX_ATTEMPTS attempts were made."""
    return _finish(session, message_id, "failed", check_text(reason, "reason", 10_000), clock())


def mark_skipped(
    session: Session, *, message_id: int, reason: str, clock: Clock = utcnow
) -> CareMessage:
    """Deliberately not sent (no consent, unreachable, capped); never retried."""
    return _finish(session, message_id, "skipped", check_text(reason, "reason", 10_000), clock())


def list_care_messages(
    session: Session,
    *,
    customer_id: int | None = None,
    campaign_key: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[CareMessage]:
    query = select(MessageRow).order_by(MessageRow.scheduled_at.desc(), MessageRow.id.desc())
    if customer_id is not None:
        query = query.where(MessageRow.customer_id == customer_id)
    if campaign_key is not None:
        query = query.join(CampaignRow, CampaignRow.id == MessageRow.campaign_id).where(
            CampaignRow.key == campaign_key
        )
    if state is not None:
        query = query.where(MessageRow.state == check_choice(state, OUTBOX_STATES, "state"))
    return [_record(row) for row in session.scalars(query.limit(limit))]


def count_sent_since(session: Session, *, customer_id: int, since: datetime) -> int:
    """How many proactive messages reached the customer since `since`, for frequency caps."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(MessageRow)
            .where(
                MessageRow.customer_id == customer_id,
                MessageRow.state == "sent",
                MessageRow.sent_at >= since,
            )
        )
    )
