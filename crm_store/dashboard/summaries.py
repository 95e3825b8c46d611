"""What the dashboard keeps so that a figure over a million customers stays a small read.

refresh_customer_summary(): customer_metrics counted per tier, preferred channel, RFM segment
and lifecycle stage (run it after analytics.refresh_customer_metrics; the funnel and segment
figures read the summary while it matches the metrics, and the metrics themselves otherwise).

record_care_responses(): for each sent care message whose windows have closed (a reply within
48 hours, an opt-out within 7 days), the first reply and the withdrawal, once. Campaign figures
count these columns and join the turns and consents live only for messages not recorded yet,
so they are right whether or not the job has run, and fast once it has.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.orm import Session

from crm_store.clock import Clock, utcnow
from crm_store.dashboard.filters import plus_hours
from crm_store.models import (
    Campaign,
    ConsentChange,
    Customer,
    CustomerMetrics,
    CustomerSummary,
    Interaction,
)
from crm_store.models import CareMessage as MessageRow

REPLY_HOURS = 48  # a customer turn this soon after a sent message counts as its reply
OPT_OUT_HOURS = 7 * 24  # a consent withdrawn this soon after counts as the message's opt-out
SUMMARY_COLUMNS = [
    "tier",
    "preferred_channel",
    "rfm_segment",
    "lifecycle_stage",
    "customers",
    "revenue_cents",
    "clv_cents",
    "computed_at",
]


def refresh_customer_summary(session: Session) -> int:
    """Rewrite the summary from customer_metrics in one INSERT ... SELECT; its row count."""
    m, c = CustomerMetrics, Customer
    keys = (c.tier, c.preferred_channel, m.rfm_segment, m.lifecycle_stage)
    rows = (
        select(
            *keys,
            func.count(),
            func.sum(m.monetary_cents),
            func.sum(m.clv_cents),
            func.max(m.computed_at),
        )
        .join(c, c.id == m.customer_id)
        .group_by(*keys)
    )
    session.execute(delete(CustomerSummary))
    session.execute(insert(CustomerSummary).from_select(SUMMARY_COLUMNS, rows))
    return int(session.scalar(select(func.count()).select_from(CustomerSummary)) or 0)


def summary_is_current(session: Session) -> bool:
    """The summary counts the metrics there are now (both empty counts as current)."""
    metrics = session.scalar(select(CustomerMetrics.computed_at).limit(1))
    summary = session.scalar(select(func.max(CustomerSummary.computed_at)))
    return metrics == summary


def first_reply(dialect: str) -> Any:
    """The customer's first turn within REPLY_HOURS after the message was sent (or NULL)."""
    m, i = MessageRow, Interaction
    return (
        select(func.min(i.occurred_at))
        .where(
            i.customer_id == m.customer_id,
            i.speaker == "customer",
            i.occurred_at > m.sent_at,
            i.occurred_at <= plus_hours(m.sent_at, REPLY_HOURS, dialect),
        )
        .correlate(m)
        .scalar_subquery()
    )


def withdrawal(dialect: str) -> Any:
    """When the customer first withdrew the campaign's consent category within OPT_OUT_HOURS.

    Read from the consent history (migration 0015), so a withdrawal taken back since still
    counts; the consents table keeps only the latest state."""
    m, c = MessageRow, ConsentChange
    return (
        select(func.min(c.changed_at))
        .select_from(c)
        .join(Campaign, Campaign.category == c.category)
        .where(
            Campaign.id == m.campaign_id,
            c.customer_id == m.customer_id,
            ~c.granted,  # the partial index ix_consent_changes_withdrawn_at
            c.changed_at > m.sent_at,
            c.changed_at <= plus_hours(m.sent_at, OPT_OUT_HOURS, dialect),
        )
        .correlate(m)
        .scalar_subquery()
    )


def _closed_before(now: datetime) -> Any:
    m = MessageRow
    return and_(
        m.state == "sent",
        m.sent_at.is_not(None),
        m.sent_at <= now - timedelta(hours=OPT_OUT_HOURS),
        m.responses_recorded_at.is_(None),
    )


def record_care_responses(session: Session, *, clock: Clock = utcnow) -> int:
    """Record reply and opt-out of every sent message whose windows closed; how many."""
    now = clock()
    dialect = session.get_bind().dialect.name
    statement = (
        update(MessageRow)
        .where(_closed_before(now))
        .values(
            replied_at=first_reply(dialect),
            opted_out_at=withdrawal(dialect),
            responses_recorded_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(statement).rowcount or 0)
