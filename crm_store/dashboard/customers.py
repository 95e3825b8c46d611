"""Customer figures: the lifecycle funnel and the RFM segments, from the latest analytics.

Both count customer_metrics, the snapshot analytics.refresh_customer_metrics() writes, so the
date range and the agent do not narrow them; revenue is lifetime spend without void orders. They
read customer_summary (a few hundred rows) while it counts the current metrics, and the metrics
themselves otherwise: the same figures, one fast and one slow at a million customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_store.dashboard.filters import SEGMENTS, DashboardFilter, share
from crm_store.dashboard.summaries import summary_is_current
from crm_store.models import LIFECYCLE_STAGES, Customer, CustomerMetrics, CustomerSummary


@dataclass(frozen=True)
class StageFigures:
    stage: str
    customers: int
    share: float | None  # of the customers in the filter
    revenue_cents: int


@dataclass(frozen=True)
class SegmentFigures:
    segment: str
    customers: int
    share: float | None
    revenue_cents: int
    average_clv_cents: int | None


Counts = dict[str, tuple[int, int, int]]  # key: (customers, revenue, CLV)


def _metrics_where(f: DashboardFilter) -> list[Any]:
    m = CustomerMetrics
    where = []
    if f.segment is not None:
        where.append(m.rfm_segment == f.segment)
    if f.stage is not None:
        where.append(m.lifecycle_stage == f.stage)
    people = []
    if f.tier is not None:
        people.append(Customer.tier == f.tier)
    if f.channel is not None:
        people.append(Customer.preferred_channel == f.channel)
    if people:
        where.append(m.customer_id.in_(select(Customer.id).where(*people)))
    return where


def _from_metrics(session: Session, f: DashboardFilter, key: str) -> Counts:
    m = CustomerMetrics
    column = getattr(m, key)
    query = (
        select(column, func.count(), func.sum(m.monetary_cents), func.sum(m.clv_cents))
        .where(*_metrics_where(f))
        .group_by(column)
    )
    return _counts(session, query)


def _from_summary(session: Session, f: DashboardFilter, key: str) -> Counts:
    s = CustomerSummary
    column = getattr(s, key)
    where = [
        condition
        for value, condition in (
            (f.tier, s.tier == f.tier),
            (f.channel, s.preferred_channel == f.channel),
            (f.segment, s.rfm_segment == f.segment),
            (f.stage, s.lifecycle_stage == f.stage),
        )
        if value is not None
    ]
    query = (
        select(column, func.sum(s.customers), func.sum(s.revenue_cents), func.sum(s.clv_cents))
        .where(*where)
        .group_by(column)
    )
    return _counts(session, query)


def _counts(session: Session, query: Any) -> Counts:
    return {
        str(k): (int(n), int(revenue or 0), int(clv or 0))
        for k, n, revenue, clv in session.execute(query)
    }


def _grouped(session: Session, f: DashboardFilter, key: str) -> Counts:
    read = _from_summary if summary_is_current(session) else _from_metrics
    return read(session, f, key)


def lifecycle_funnel(session: Session, f: DashboardFilter) -> list[StageFigures]:
    """Every stage in funnel order (new, converting, maintaining, loyal, churning), 0 if empty."""
    counts = _grouped(session, f, "lifecycle_stage")
    total = sum(n for n, _, _ in counts.values())
    rows = []
    for stage in LIFECYCLE_STAGES:
        n, revenue, _ = counts.get(stage, (0, 0, 0))
        rows.append(StageFigures(stage, n, share(n, total), revenue))
    return rows


def rfm_segments(session: Session, f: DashboardFilter) -> list[SegmentFigures]:
    """Every RFM segment in the order of the rules (prospects last), 0 if empty."""
    counts = _grouped(session, f, "rfm_segment")
    total = sum(n for n, _, _ in counts.values())
    rows = []
    for segment in SEGMENTS:
        n, revenue, clv = counts.get(segment, (0, 0, 0))
        average = None if n == 0 else round(clv / n)
        rows.append(SegmentFigures(segment, n, share(n, total), revenue, average))
    return rows
