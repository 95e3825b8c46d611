"""Lifecycle analytics computed inside the database, one set-based statement per refresh.

refresh_customer_metrics() rewrites customer_metrics with, per customer:
- RFM: quintiles 1-5 of recency (last order), frequency (orders) and monetary (spend) among
  buyers, by rank with ties broken by customer id; non-buyers have none and segment "prospect";
- rfm_segment: the first RFM_RULES entry whose R and F ranges contain the scores;
- churn_risk 0-100: 40% recency step, 30% drop of the last 180 days' orders against the
  customer's own rate in the 540 days before, 15% the same drop for chat turns (90 vs 270 days),
  15% negative feedback (CSAT <= 2 or NPS <= 6) in the last 90 days;
- clv_cents: spend so far + last-365-days spend x CLV_YEARS x (1 - churn_risk / 100);
- lifecycle_stage: new, churning, converting, loyal, maintaining (first that applies).
Cancelled and refunded orders never count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Float, Integer, and_, case, cast, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from crm_store.clock import Clock, utcnow
from crm_store.errors import NotFound
from crm_store.models import (
    Customer,
    CustomerMetrics,
    Interaction,
    Order,
    SegmentMember,
    SurveyResponse,
)
from crm_store.models import Segment as SegmentRow
from crm_store.orders import VOID_STATUSES
from crm_store.surveys import RESPONDED

# (segment, lowest R, highest R, lowest F, highest F); the first match wins.
RFM_RULES = (
    ("champions", 4, 5, 4, 5),
    ("loyal", 3, 5, 3, 5),
    ("new", 5, 5, 1, 1),
    ("promising", 4, 5, 1, 2),
    ("about_to_sleep", 3, 3, 1, 2),
    ("cannot_lose", 1, 1, 5, 5),
    ("at_risk", 1, 2, 3, 5),
    ("hibernating", 2, 2, 1, 2),
    ("lost", 1, 1, 1, 2),
)
PROSPECT = "prospect"
RECENCY_STEPS = ((30, 0.0), (90, 0.25), (180, 0.5), (365, 0.75))  # within N days -> component
WEIGHTS = {"recency": 0.40, "orders": 0.30, "turns": 0.15, "negative": 0.15}
ORDER_WINDOW_DAYS, ORDER_HISTORY_DAYS = 180, 540
TURN_WINDOW_DAYS, TURN_HISTORY_DAYS = 90, 270
NEGATIVE_FEEDBACK_DAYS = 90
CLV_YEARS = 3
NEW_CUSTOMER_DAYS = 30
CHURNING_RISK = 60
SORT_MEMORY = "256MB"


@dataclass(frozen=True)
class Metrics:
    customer_id: int
    computed_at: datetime
    last_order_at: datetime | None
    frequency: int
    monetary_cents: int
    r_score: int | None
    f_score: int | None
    m_score: int | None
    rfm_segment: str
    churn_risk: int
    clv_cents: int
    lifecycle_stage: str


def rfm_segment(r: int | None, f: int | None) -> str:
    """The segment label for R and F scores (None: never bought)."""
    if r is None or f is None:
        return PROSPECT
    for name, r_low, r_high, f_low, f_high in RFM_RULES:
        if r_low <= r <= r_high and f_low <= f <= f_high:
            return name
    raise ValueError(f"scores out of range: R={r} F={f}")


def _segment_case(r: Any, f: Any) -> Any:
    whens = [
        (and_(r.between(rl, rh), f.between(fl, fh)), literal(name))
        for name, rl, rh, fl, fh in RFM_RULES
    ]
    return case(*whens, else_=literal(PROSPECT))


def _count_if(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _order_stats(now: datetime) -> Any:
    window, history = (
        now - timedelta(days=ORDER_WINDOW_DAYS),
        now - timedelta(days=ORDER_WINDOW_DAYS + ORDER_HISTORY_DAYS),
    )
    year = now - timedelta(days=365)
    return (
        select(
            Order.customer_id,
            func.max(Order.placed_at).label("last_order_at"),
            func.count().label("frequency"),
            func.sum(Order.total_cents).label("monetary"),
            _count_if(Order.placed_at >= window).label("recent_orders"),
            _count_if(and_(Order.placed_at >= history, Order.placed_at < window)).label(
                "prior_orders"
            ),
            func.sum(case((Order.placed_at >= year, Order.total_cents), else_=0)).label(
                "spend_365"
            ),
        )
        .where(Order.status.not_in(VOID_STATUSES), Order.placed_at <= now)
        .group_by(Order.customer_id)
        .cte("order_stats")
    )


def _turn_stats(now: datetime) -> Any:
    window = now - timedelta(days=TURN_WINDOW_DAYS)
    history = window - timedelta(days=TURN_HISTORY_DAYS)
    return (
        select(
            Interaction.customer_id,
            _count_if(Interaction.occurred_at >= window).label("recent_turns"),
            _count_if(Interaction.occurred_at < window).label("prior_turns"),
        )
        .where(
            Interaction.speaker == "customer",
            Interaction.customer_id.is_not(None),
            Interaction.occurred_at >= history,
            Interaction.occurred_at <= now,
        )
        .group_by(Interaction.customer_id)
        .cte("turn_stats")
    )


def _negative_feedback(now: datetime) -> Any:
    since = now - timedelta(days=NEGATIVE_FEEDBACK_DAYS)
    return (
        select(SurveyResponse.customer_id, literal(1).label("negative"))
        .where(
            SurveyResponse.status.in_(RESPONDED),  # a low CSAT of a survey left midway too
            SurveyResponse.asked_at >= since,
            SurveyResponse.asked_at <= now,
            SurveyResponse.customer_id.is_not(None),
            (SurveyResponse.csat <= 2) | (SurveyResponse.nps <= 6),
        )
        .group_by(SurveyResponse.customer_id)
        .cte("negative_feedback")
    )


def _drop(recent: Any, prior: Any, history_windows: int) -> Any:
    """1 - recent / (prior per window), floored at 0; 0 without history."""
    prior, recent = func.coalesce(prior, 0), func.coalesce(recent, 0)
    ratio = 1.0 - cast(recent, Float) * history_windows / cast(prior, Float)
    return case((prior == 0, 0.0), (ratio < 0, 0.0), else_=ratio)


def _recency_component(reference: Any, now: datetime) -> Any:
    steps = [
        (reference >= now - timedelta(days=days), literal(value)) for days, value in RECENCY_STEPS
    ]
    return case(*steps, else_=literal(1.0))


def _quintiles(orders: Any) -> Any:
    """R, F and M as 1-5 by rank among buyers (ties broken by customer id).

    Ranked on the narrow per-buyer aggregate, not on the joined rows: the three window sorts
    then move a few columns instead of every customer's whole row.
    """

    def quintile(column: Any) -> Any:
        return func.ntile(5).over(order_by=(column, orders.c.customer_id))

    return select(
        orders.c.customer_id,
        quintile(orders.c.last_order_at).label("r_score"),
        quintile(orders.c.frequency).label("f_score"),
        quintile(orders.c.monetary).label("m_score"),
    ).cte("quintiles")


def _scored(now: datetime) -> Any:
    orders, turns, negative = _order_stats(now), _turn_stats(now), _negative_feedback(now)
    ranks = _quintiles(orders)
    risk = (
        WEIGHTS["recency"]
        * _recency_component(func.coalesce(orders.c.last_order_at, Customer.created_at), now)
        + WEIGHTS["orders"]
        * _drop(
            orders.c.recent_orders, orders.c.prior_orders, ORDER_HISTORY_DAYS // ORDER_WINDOW_DAYS
        )
        + WEIGHTS["turns"]
        * _drop(turns.c.recent_turns, turns.c.prior_turns, TURN_HISTORY_DAYS // TURN_WINDOW_DAYS)
        + WEIGHTS["negative"] * func.coalesce(negative.c.negative, 0)
    )
    return (
        select(
            Customer.id.label("customer_id"),
            Customer.created_at,
            orders.c.last_order_at,
            func.coalesce(orders.c.frequency, 0).label("frequency"),
            func.coalesce(orders.c.monetary, 0).label("monetary"),
            func.coalesce(orders.c.spend_365, 0).label("spend_365"),
            ranks.c.r_score,
            ranks.c.f_score,
            ranks.c.m_score,
            cast(func.round(100 * risk), Integer).label("churn_risk"),
        )
        .select_from(Customer)
        .join(orders, orders.c.customer_id == Customer.id, isouter=True)
        .join(ranks, ranks.c.customer_id == Customer.id, isouter=True)
        .join(turns, turns.c.customer_id == Customer.id, isouter=True)
        .join(negative, negative.c.customer_id == Customer.id, isouter=True)
        .cte("scored")
    )


def _metrics_select(now: datetime) -> Any:
    s = _scored(now)
    segment = _segment_case(s.c.r_score, s.c.f_score)
    stage = case(
        (s.c.created_at >= now - timedelta(days=NEW_CUSTOMER_DAYS), literal("new")),
        (and_(s.c.frequency > 0, s.c.churn_risk >= CHURNING_RISK), literal("churning")),
        (s.c.frequency <= 1, literal("converting")),
        (and_(s.c.r_score >= 3, s.c.f_score >= 4), literal("loyal")),
        else_=literal("maintaining"),
    )
    clv = s.c.monetary + cast(s.c.spend_365 * CLV_YEARS * (100 - s.c.churn_risk) / 100.0, Integer)
    return select(
        s.c.customer_id,
        literal(now, CustomerMetrics.computed_at.type),
        s.c.last_order_at,
        s.c.frequency,
        s.c.monetary,
        s.c.r_score,
        s.c.f_score,
        s.c.m_score,
        segment,
        s.c.churn_risk,
        clv,
        stage,
    )


METRIC_COLUMNS = [
    "customer_id",
    "computed_at",
    "last_order_at",
    "frequency",
    "monetary_cents",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "churn_risk",
    "clv_cents",
    "lifecycle_stage",
]


def refresh_customer_metrics(session: Session, *, clock: Clock = utcnow) -> int:
    """Recompute every customer's metrics in one INSERT ... SELECT; the number of rows."""
    now = clock()
    if session.get_bind().dialect.name == "postgresql":
        # The three NTILE windows sort every customer; keep those sorts in memory.
        session.execute(select(func.set_config("work_mem", SORT_MEMORY, True)))
    session.execute(delete(CustomerMetrics))
    session.execute(insert(CustomerMetrics).from_select(METRIC_COLUMNS, _metrics_select(now)))
    return int(session.scalar(select(func.count()).select_from(CustomerMetrics)))


def _record(row: CustomerMetrics) -> Metrics:
    return Metrics(
        row.customer_id,
        row.computed_at,
        row.last_order_at,
        row.frequency,
        row.monetary_cents,
        row.r_score,
        row.f_score,
        row.m_score,
        row.rfm_segment,
        row.churn_risk,
        row.clv_cents,
        row.lifecycle_stage,
    )


def get_customer_metrics(session: Session, *, customer_id: int) -> Metrics:
    row = session.get(CustomerMetrics, customer_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no metrics for customer {customer_id}; refresh them first")
    return _record(row)


def rfm_segment_counts(session: Session) -> dict[str, int]:
    query = select(CustomerMetrics.rfm_segment, func.count()).group_by(CustomerMetrics.rfm_segment)
    return {segment: int(count) for segment, count in session.execute(query)}


def lifecycle_stage_counts(session: Session) -> dict[str, int]:
    query = select(CustomerMetrics.lifecycle_stage, func.count()).group_by(
        CustomerMetrics.lifecycle_stage
    )
    return {stage: int(count) for stage, count in session.execute(query)}


def list_churn_risks(
    session: Session, *, min_risk: int = CHURNING_RISK, limit: int = 100
) -> list[Metrics]:
    """Win-back candidates: highest risk first, the most valuable first among equals."""
    query = (
        select(CustomerMetrics)
        .where(CustomerMetrics.churn_risk >= min_risk, CustomerMetrics.frequency > 0)
        .order_by(
            CustomerMetrics.churn_risk.desc(),
            CustomerMetrics.clv_cents.desc(),
            CustomerMetrics.customer_id,
        )
        .limit(limit)
    )
    return [_record(row) for row in session.scalars(query)]


def refresh_segment(
    session: Session,
    *,
    key: str,
    rfm_segments: tuple[str, ...] = (),
    lifecycle_stages: tuple[str, ...] = (),
    clock: Clock = utcnow,
) -> int:
    """Make the segment's members the customers whose metrics match, set-based; its size."""
    segment = session.scalars(select(SegmentRow).where(SegmentRow.key == key)).first()
    if segment is None:
        raise NotFound(f"no segment {key}")
    session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
    members = select(literal(segment.id), CustomerMetrics.customer_id).where(
        CustomerMetrics.rfm_segment.in_(rfm_segments)
        | CustomerMetrics.lifecycle_stage.in_(lifecycle_stages)
    )
    session.execute(insert(SegmentMember).from_select(["segment_id", "customer_id"], members))
    segment.refreshed_at = clock()
    session.flush()
    return int(
        session.scalar(
            select(func.count())
            .select_from(SegmentMember)
            .where(SegmentMember.segment_id == segment.id)
        )
    )
