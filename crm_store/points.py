"""The points ledger. Every change is a ledger row; customers.points_balance is its running cache.

A spend is one guarded UPDATE (balance >= amount) before the ledger row is written, so two
sessions redeeming at once cannot both succeed: PostgreSQL re-checks the guard after the row
lock is released, SQLite serialises the writers.

A change that must happen once (a birthday gift, a confirmed redemption) carries an
`idempotency_key`, unique per customer in the ledger (migration 0017): a second write under the
key, a retry or a concurrent path, changes nothing and returns the first entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, distinct, func, select, update
from sqlalchemy.orm import Session

from crm_store._unique import try_change
from crm_store.audit import record_audit
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, NotFound
from crm_store.models import TIERS
from crm_store.models import Customer as CustomerRow
from crm_store.models import PointsEntry as EntryRow
from crm_store.validation import check_choice, check_positive, check_text

POINTS_VALID_DAYS = 365
TIER_MULTIPLIER = {"普通": 1.0, "银卡": 1.2, "金卡": 1.5, "钻石": 2.0}


@dataclass(frozen=True)
class PointsEntry:
    id: int
    customer_id: int
    kind: str
    delta: int
    balance_after: int
    reason: str
    order_id: str | None
    created_at: datetime
    expires_at: datetime | None
    idempotency_key: str | None = None


def points_for_purchase(total_cents: int, tier: str) -> int:
    """One point per whole yuan, times the tier's multiplier, rounded down."""
    check_choice(tier, TIERS, "tier")
    return int(total_cents // 100 * TIER_MULTIPLIER[tier])


@dataclass(frozen=True)
class PointsExpiry:
    """Points of the balance that expire at one moment (an earn row's `expires_at`)."""

    expires_at: datetime
    points: int


def points_to_expire(expired_earned: int, consumed: int) -> int:
    """Spending uses the oldest points first: what expires is expired earnings not yet used."""
    return max(0, expired_earned - consumed)


def _record(row: EntryRow) -> PointsEntry:
    return PointsEntry(
        row.id,
        row.customer_id,
        row.kind,
        row.delta,
        row.balance_after,
        row.reason,
        row.order_id,
        row.created_at,
        row.expires_at,
        row.idempotency_key,
    )


def _apply(session: Session, customer_id: int, delta: int) -> int:
    """Move the cached balance by `delta` unless it would go negative; the new balance."""
    result = session.execute(
        update(CustomerRow)
        .where(CustomerRow.id == customer_id, CustomerRow.points_balance + delta >= 0)
        .values(points_balance=CustomerRow.points_balance + delta)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        if session.get(CustomerRow, customer_id) is None:
            raise NotFound(f"no customer {customer_id}")
        raise Conflict(f"customer {customer_id} has fewer than {-delta} points")
    # Re-read (after the write, so SQLite never upgrades a stale read snapshot) and refresh
    # any Customer object this session already holds.
    return int(session.get(CustomerRow, customer_id, populate_existing=True).points_balance)


def _write(
    session: Session,
    *,
    customer_id: int,
    kind: str,
    delta: int,
    reason: str,
    order_id: str | None,
    now: datetime,
    expires_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> PointsEntry:
    balance = _apply(session, customer_id, delta)
    row = EntryRow(
        customer_id=customer_id,
        kind=kind,
        delta=delta,
        balance_after=balance,
        reason=check_text(reason, "reason", 64),
        order_id=order_id,
        created_at=now,
        expires_at=expires_at,
        idempotency_key=idempotency_key,
    )
    session.add(row)
    session.flush()
    return _record(row)


def find_keyed_entry(
    session: Session, *, customer_id: int, idempotency_key: str
) -> PointsEntry | None:
    """The entry written under this key for the customer, if any."""
    row = session.scalars(
        select(EntryRow).where(
            EntryRow.customer_id == customer_id, EntryRow.idempotency_key == idempotency_key
        )
    ).first()
    return None if row is None else _record(row)


def _once(
    session: Session,
    customer_id: int,
    idempotency_key: str | None,
    write: Callable[[str | None], PointsEntry],
) -> PointsEntry:
    """`write(key)` unless an entry under the key exists: then that entry, nothing changed.

    The write runs in a savepoint: when a concurrent transaction wrote the key first, the
    unique index refuses this row and the balance change is undone with it. A spend refused
    for a short balance is the first write's answer too when that write was this key's (the
    first spend took the points).
    """
    if idempotency_key is None:
        return write(None)
    key = check_text(idempotency_key, "idempotency_key", 64)
    earlier = find_keyed_entry(session, customer_id=customer_id, idempotency_key=key)
    if earlier is not None:
        return earlier
    written: list[PointsEntry] = []
    try:
        stored = try_change(session, lambda: written.append(write(key)))
    except Conflict:
        stored = False
        if find_keyed_entry(session, customer_id=customer_id, idempotency_key=key) is None:
            raise
    if stored:
        return written[0]
    winner = find_keyed_entry(session, customer_id=customer_id, idempotency_key=key)
    if winner is None:  # pragma: no cover - the insert failed for another reason
        raise Conflict(f"the points entry {key} could not be written")
    return winner


def earn_points(
    session: Session,
    *,
    customer_id: int,
    points: int,
    reason: str,
    order_id: str | None = None,
    idempotency_key: str | None = None,
    clock: Clock = utcnow,
) -> PointsEntry:
    """Credit points (valid POINTS_VALID_DAYS). With `idempotency_key` (a birthday gift:
    "birthday_gift:<period>"), once per customer and key: a second call returns the first
    entry and credits nothing."""
    now = clock()
    delta = check_positive(points, "points")
    return _once(
        session,
        customer_id,
        idempotency_key,
        lambda key: _write(
            session,
            customer_id=customer_id,
            kind="earn",
            delta=delta,
            reason=reason,
            order_id=order_id,
            now=now,
            expires_at=now + timedelta(days=POINTS_VALID_DAYS),
            idempotency_key=key,
        ),
    )


def redeem_points(
    session: Session,
    *,
    customer_id: int,
    points: int,
    reason: str,
    order_id: str | None = None,
    idempotency_key: str | None = None,
    clock: Clock = utcnow,
) -> PointsEntry:
    """Spend points; Conflict if the balance is short (also after a concurrent spend won).

    With `idempotency_key` (a confirmed redemption: "redeem:<request id>"), once per customer
    and key: a retry of the same request, after a timeout that the first spend outlived or
    while it is still running, returns the first entry and spends nothing more."""
    delta, now = -check_positive(points, "points"), clock()
    return _once(
        session,
        customer_id,
        idempotency_key,
        lambda key: _write(
            session,
            customer_id=customer_id,
            kind="redeem",
            delta=delta,
            reason=reason,
            order_id=order_id,
            now=now,
            idempotency_key=key,
        ),
    )


def adjust_points(
    session: Session,
    *,
    customer_id: int,
    delta: int,
    reason: str,
    actor: str,
    clock: Clock = utcnow,
) -> PointsEntry:
    """A manual correction by staff, audited."""
    if delta == 0:
        check_positive(delta, "adjustment")
    entry = _write(
        session,
        customer_id=customer_id,
        kind="adjust",
        delta=delta,
        reason=reason,
        order_id=None,
        now=clock(),
    )
    record_audit(
        session,
        actor=actor,
        action="adjust_points",
        entity="customer",
        entity_id=customer_id,
        changes={"points": [None, delta], "reason": reason},
        clock=clock,
    )
    return entry


def expire_points(
    session: Session, *, customer_id: int, clock: Clock = utcnow
) -> PointsEntry | None:
    """Write the expiry due now, if any. Safe to run twice: the second run finds nothing due."""
    now = clock()
    _apply(session, customer_id, 0)  # takes the customer's row lock first: expiries serialise
    expired_earned, consumed, balance = _expiry_inputs(session, customer_id, now)
    due = min(points_to_expire(expired_earned, consumed), balance)
    if due <= 0:
        return None
    return _write(
        session,
        customer_id=customer_id,
        kind="expire",
        delta=-due,
        reason="expired",
        order_id=None,
        now=now,
    )


def _expiry_inputs(session: Session, customer_id: int, now: datetime) -> tuple[int, int, int]:
    earned = func.coalesce(
        func.sum(
            case(
                ((EntryRow.kind == "earn") & (EntryRow.expires_at <= now), EntryRow.delta), else_=0
            )
        ),
        0,
    )
    consumed = func.coalesce(func.sum(case((EntryRow.delta < 0, -EntryRow.delta), else_=0)), 0)
    row = session.execute(
        select(earned, consumed, func.coalesce(func.sum(EntryRow.delta), 0)).where(
            EntryRow.customer_id == customer_id
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def customers_with_points_to_expire(
    session: Session, *, clock: Clock = utcnow, limit: int = 10_000
) -> list[int]:
    """Ids of customers with an expiry due, found in one grouped query."""
    now = clock()
    earned = func.sum(
        case(((EntryRow.kind == "earn") & (EntryRow.expires_at <= now), EntryRow.delta), else_=0)
    )
    consumed = func.sum(case((EntryRow.delta < 0, -EntryRow.delta), else_=0))
    query = (
        select(EntryRow.customer_id)
        .group_by(EntryRow.customer_id)
        .having(earned > consumed)
        .order_by(EntryRow.customer_id)
        .limit(limit)
    )
    return list(session.scalars(query))


def points_balance(session: Session, *, customer_id: int) -> int:
    balance = session.scalar(
        select(CustomerRow.points_balance).where(CustomerRow.id == customer_id)
    )
    if balance is None:
        raise NotFound(f"no customer {customer_id}")
    return int(balance)


def list_points_entries(
    session: Session, *, customer_id: int, limit: int = 20
) -> list[PointsEntry]:
    query = (
        select(EntryRow)
        .where(EntryRow.customer_id == customer_id)
        .order_by(EntryRow.created_at.desc(), EntryRow.id.desc())
        .limit(limit)
    )
    return [_record(row) for row in session.scalars(query)]


def reconcile_points(session: Session, *, customer_id: int, clock: Clock = utcnow) -> int:
    """Reset the cached balance to the ledger's sum (audited if they differed); the balance."""
    cached = points_balance(session, customer_id=customer_id)
    ledger = int(
        session.scalar(
            select(func.coalesce(func.sum(EntryRow.delta), 0)).where(
                EntryRow.customer_id == customer_id
            )
        )
    )
    if ledger != cached:
        session.execute(
            update(CustomerRow)
            .where(CustomerRow.id == customer_id)
            .values(points_balance=ledger)
            .execution_options(synchronize_session=False)
        )
        record_audit(
            session,
            actor="system",
            action="reconcile_points",
            entity="customer",
            entity_id=customer_id,
            changes={"points_balance": [cached, ledger]},
            clock=clock,
        )
    return ledger


def points_expiring_by(session: Session, *, customer_id: int, until: datetime) -> int:
    """Points that will have expired by `until` if the customer spends nothing before then
    (spending uses the oldest points first, as for `expire_points`)."""
    expired_earned, consumed, balance = _expiry_inputs(session, customer_id, until)
    return min(points_to_expire(expired_earned, consumed), balance)


def points_expiry_schedule(
    session: Session, *, customer_id: int, until: datetime
) -> list[PointsExpiry]:
    """When the points of the balance expire, up to `until`, earliest first: each earn row's own
    `expires_at` with what is left of it (spending and earlier expiries use the oldest points
    first, as for `expire_points`). A moment already past is listed too when its expiry is due
    but not written yet, so whoever tells the customer can say it as past."""
    moments = session.scalars(
        select(distinct(EntryRow.expires_at))
        .where(
            EntryRow.customer_id == customer_id,
            EntryRow.kind == "earn",
            EntryRow.expires_at <= until,
        )
        .order_by(EntryRow.expires_at)
    )
    schedule: list[PointsExpiry] = []
    counted = 0
    for moment in moments:
        by_then = points_expiring_by(session, customer_id=customer_id, until=moment)
        if by_then > counted:
            schedule.append(PointsExpiry(moment, by_then - counted))
            counted = by_then
    return schedule
