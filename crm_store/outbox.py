"""Care messages as an outbox: one row per customer x campaign x period, sent at most once.

pending -> sending (claimed, attempts + 1) -> sent | failed (retried until MAX_ATTEMPTS) | skipped
sending -> pending (deferred: no channel reaches the customer now; the attempt is given back)
sending -> failed (reclaimed: the claimer died mid-send; `reclaim_stale_claims`)

A claimer finishes only the rows it claimed: pass the row's `claim_token` to `mark_*`, and a
claim that was reclaimed meanwhile (and perhaps claimed again by another dispatcher) answers
Conflict instead of overwriting the newer claim's outcome.

A claim is a lease: `updated_at` is its last heartbeat, and `reclaim_stale_claims` takes back
rows whose lease ran out. Immediately before each send the claimer calls `renew_claim`: one
guarded UPDATE that both proves the claim still holds that row and starts its lease (and the
lease of the rest of its batch) again; a lost claim is not sent.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

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
    claim_token: str | None = None
    created_at: datetime | None = None


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
        row.claim_token,
        row.created_at,
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


def _get(session: Session, message_id: int, lock: bool = False) -> MessageRow:
    """The row; with `lock`, locked until the transaction ends (PostgreSQL: FOR UPDATE), so a
    claim checked on it cannot be reclaimed before the caller's change is written."""
    row = session.get(MessageRow, message_id, populate_existing=True, with_for_update=lock)
    if row is None:
        raise NotFound(f"no care message {message_id}")
    return row


def _finish(
    session: Session,
    message_id: int,
    state: str,
    reason: str | None,
    now: datetime,
    claim_token: str | None = None,
) -> MessageRow:
    row = _get(session, message_id, lock=claim_token is not None)
    if row.state == "sent":
        raise Conflict(f"care message {message_id} was already sent")
    _check_claim(row, claim_token)
    row.state, row.updated_at = state, now
    row.reason = reason[:REASON_MAX] if reason else None
    if state == "sent":
        row.sent_at = now
    session.flush()
    return row


def _check_claim(row: MessageRow, claim_token: str | None) -> None:
    """With a token, only the claim that holds the row may finish it."""
    if claim_token is None:
        return
    if row.state != "sending" or row.claim_token != claim_token:
        raise Conflict(f"care message {row.id} is no longer held by this claim")


def mark_sent(
    session: Session, *, message_id: int, claim_token: str | None = None, clock: Clock = utcnow
) -> CareMessage:
    return _record(_finish(session, message_id, "sent", None, clock(), claim_token))


def mark_failed(
    session: Session,
    *,
    message_id: int,
    reason: str,
    claim_token: str | None = None,
    retry_at: datetime | None = None,
    clock: Clock = utcnow,
) -> CareMessage:
    """Failed now; claimed again (not before `retry_at`) until MAX_ATTEMPTS attempts were made."""
    reason = check_text(reason, "reason", 10_000)
    row = _finish(session, message_id, "failed", reason, clock(), claim_token)
    if retry_at is not None:
        row.scheduled_at = retry_at
        session.flush()
    return _record(row)


def mark_skipped(
    session: Session,
    *,
    message_id: int,
    reason: str,
    claim_token: str | None = None,
    clock: Clock = utcnow,
) -> CareMessage:
    """Deliberately not sent (no consent, capped, control group); never retried."""
    reason = check_text(reason, "reason", 10_000)
    return _record(_finish(session, message_id, "skipped", reason, clock(), claim_token))


def defer_message(
    session: Session,
    *,
    message_id: int,
    until: datetime,
    reason: str,
    claim_token: str | None = None,
    clock: Clock = utcnow,
) -> CareMessage:
    """Back to pending until `until` (e.g. no channel reaches the customer now).

    Waiting is not a failed delivery: the claim's attempt is given back, so a customer who is
    unreachable for days is still tried once they are reachable.
    """
    reason = check_text(reason, "reason", 10_000)
    row = _finish(session, message_id, "pending", reason, clock(), claim_token)
    row.scheduled_at, row.attempts = until, max(row.attempts - 1, 0)
    session.flush()
    return _record(row)


def renew_claim(
    session: Session, *, message_id: int, claim_token: str | None, clock: Clock = utcnow
) -> bool:
    """Whether `claim_token` still holds the row, checked and renewed in one guarded UPDATE.

    True: the row is `sending` under this token, and its lease starts again now, as does the
    lease of every other row the claim still holds (a heartbeat for the batch). The row cannot
    be reclaimed before `now + stale window`, so whoever sends it right after is its only
    sender. False: the claim was lost (reclaimed, and perhaps claimed again by another
    dispatcher); the caller must not send. The UPDATE takes the row's lock (PostgreSQL) or the
    database's write lock (SQLite) and re-checks its guard against a concurrent reclaim, so
    exactly one of the two wins.
    """
    if claim_token is None:
        return False
    now = clock()
    held = (MessageRow.state == "sending", MessageRow.claim_token == claim_token)
    result = session.execute(
        update(MessageRow)
        .where(MessageRow.id == message_id, *held)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    # The rest of the batch: rows another transaction has locked (a reclaim at this very
    # moment) are skipped rather than waited for, so the heartbeat never joins a deadlock.
    rest = (
        select(MessageRow.id)
        .where(*held, MessageRow.updated_at < now)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        update(MessageRow)
        .where(MessageRow.id.in_(rest))
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return True


STALE_CLAIM_REASON = "claim expired: the dispatcher stopped while sending"


def reclaim_stale_claims(session: Session, *, older_than: timedelta, clock: Clock = utcnow) -> int:
    """Rows stuck in `sending` for longer than `older_than` become failed (retryable); how many.

    A dispatcher that died between its claim and its acknowledgement leaves its rows in
    `sending`. Whether Rasa got the trigger is unknown, so the row is retried: the action that
    composes the message finds the row's delivery recorded (crm_store.deliveries) and sends
    nothing (the receiving side is idempotent), which makes the retry safe. The token is
    cleared, so the old claim can neither send (`renew_claim` answers False to a paused process
    that wakes up) nor acknowledge the row.
    """
    now = clock()
    result = session.execute(
        update(MessageRow)
        .where(MessageRow.state == "sending", MessageRow.updated_at <= now - older_than)
        .values(state="failed", reason=STALE_CLAIM_REASON, claim_token=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


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


def get_care_message(session: Session, *, message_id: int) -> CareMessage:
    """One outbox row (what an EXTERNAL_care_message trigger refers to)."""
    return _record(_get(session, message_id))


def count_by_campaign(session: Session) -> dict[str, dict[str, int]]:
    """campaign key -> outbox state -> rows, every state present (0 when none), in one query."""
    rows = session.execute(
        select(CampaignRow.key, MessageRow.state, func.count())
        .join(CampaignRow, CampaignRow.id == MessageRow.campaign_id)
        .group_by(CampaignRow.key, MessageRow.state)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for key, state, count in rows:
        counts.setdefault(key, dict.fromkeys(OUTBOX_STATES, 0))[state] = int(count)
    return counts
