"""Win-back outcomes: did the customer come back (order) within 30 days of the offer, or not.

Both arms of the experiment get an outbox row when the campaign is planned: the treated arm's
row is sent, the control arm's is `skipped` with reason `control_group`. The outcome is set on
each row once its 30-day window (from the row's creation, the same reference for both arms) has
closed, so treated and control are measured alike and the uplift can be computed from counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from crm_store.clock import Clock, utcnow
from crm_store.models import Campaign as CampaignRow
from crm_store.models import CareMessage as MessageRow
from crm_store.models import Order as OrderRow
from crm_store.orders import VOID_STATUSES

WIN_BACK_CAMPAIGN = "win_back"
WIN_BACK_WINDOW = timedelta(days=30)
CONTROL_GROUP_REASON = "control_group"
RETURNED, LAPSED = "returned", "lapsed"
BATCH = 1000


@dataclass(frozen=True)
class ArmCounts:
    measured: int  # rows whose outcome is known
    returned: int


@dataclass(frozen=True)
class WinBackCounts:
    treated: ArmCounts
    control: ArmCounts


def _in_experiment() -> ColumnElement:
    treated = MessageRow.state == "sent"
    control = (MessageRow.state == "skipped") & (MessageRow.reason == CONTROL_GROUP_REASON)
    return treated | control


def _campaign_id(session: Session, key: str) -> int | None:
    return session.scalar(select(CampaignRow.id).where(CampaignRow.key == key))


def record_win_back_outcomes(
    session: Session,
    *,
    campaign_key: str = WIN_BACK_CAMPAIGN,
    window: timedelta = WIN_BACK_WINDOW,
    clock: Clock = utcnow,
) -> int:
    """Set the outcome of every experiment row whose window has closed; how many were set."""
    campaign_id = _campaign_id(session, campaign_key)
    if campaign_id is None:
        return 0
    now, recorded = clock(), 0
    while rows := _closed_rows(session, campaign_id, now - window):
        returned = _returned_ids(session, rows, window)
        _set_outcomes(session, [row[0] for row in rows], returned, now)
        recorded += len(rows)
    return recorded


def _closed_rows(
    session: Session, campaign_id: int, created_before: datetime
) -> list[tuple[int, int, datetime]]:
    query = (
        select(MessageRow.id, MessageRow.customer_id, MessageRow.created_at)
        .where(
            MessageRow.campaign_id == campaign_id,
            MessageRow.outcome.is_(None),
            MessageRow.created_at <= created_before,
            _in_experiment(),
        )
        .order_by(MessageRow.id)
        .limit(BATCH)
    )
    return [(row.id, row.customer_id, row.created_at) for row in session.execute(query)]


def _returned_ids(
    session: Session, rows: Sequence[tuple[int, int, datetime]], window: timedelta
) -> set[int]:
    """The rows whose customer placed a (not void) order inside the row's window."""
    customers = {customer_id for _, customer_id, _ in rows}
    first = min(created_at for _, _, created_at in rows)
    last = max(created_at for _, _, created_at in rows) + window
    orders = session.execute(
        select(OrderRow.customer_id, OrderRow.placed_at).where(
            OrderRow.customer_id.in_(customers),
            OrderRow.status.not_in(VOID_STATUSES),
            OrderRow.placed_at >= first,
            OrderRow.placed_at < last,
        )
    ).all()
    placed: dict[int, list[datetime]] = {}
    for customer_id, placed_at in orders:
        placed.setdefault(customer_id, []).append(placed_at)
    return {
        row_id
        for row_id, customer_id, created_at in rows
        if any(created_at <= at < created_at + window for at in placed.get(customer_id, []))
    }


def _set_outcomes(session: Session, ids: list[int], returned: set[int], now: datetime) -> None:
    for outcome, chosen in ((RETURNED, returned), (LAPSED, set(ids) - returned)):
        if chosen:
            session.execute(
                update(MessageRow)
                .where(MessageRow.id.in_(chosen))
                .values(outcome=outcome, outcome_at=now)
                .execution_options(synchronize_session=False)
            )


def win_back_counts(session: Session, *, campaign_key: str = WIN_BACK_CAMPAIGN) -> WinBackCounts:
    """Measured and returned rows per arm, in one query."""
    campaign_id = _campaign_id(session, campaign_key)
    if campaign_id is None:
        return WinBackCounts(ArmCounts(0, 0), ArmCounts(0, 0))
    rows = session.execute(
        select(MessageRow.state, MessageRow.outcome, func.count())
        .where(
            MessageRow.campaign_id == campaign_id,
            MessageRow.outcome.is_not(None),
            _in_experiment(),
        )
        .group_by(MessageRow.state, MessageRow.outcome)
    ).all()
    return WinBackCounts(_arm(rows, "sent"), _arm(rows, "skipped"))


def _arm(rows: Sequence[tuple[str, str, int]], state: str) -> ArmCounts:
    measured = sum(int(count) for row_state, _, count in rows if row_state == state)
    returned = sum(
        int(count)
        for row_state, outcome, count in rows
        if row_state == state and outcome == RETURNED
    )
    return ArmCounts(measured, returned)
