"""定期回访: buyers on a cadence by customer type (rules.follow_up_cadence), spread over the
first four weeks of a period; not for customers at win-back risk or who ordered lately."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import and_, case, literal, select
from sqlalchemy.sql import Select

from crm_store.campaigns.candidates import candidate_columns
from crm_store.campaigns.rules import (
    CADENCES,
    SPREAD_DAYS,
    PlanSettings,
    cadence_period,
    period_start,
)
from crm_store.campaigns.spec import CampaignSpec
from crm_store.models import Customer, CustomerMetrics


def candidates(day: date, now: datetime, settings: PlanSettings) -> Select:
    m = CustomerMetrics
    monthly = and_(
        m.frequency >= settings.frequent_orders,
        m.monetary_cents < settings.low_price_cents * m.frequency,
    )
    half_yearly = and_(
        m.frequency <= settings.rare_orders,
        m.monetary_cents >= settings.high_price_cents * m.frequency,
    )
    cadence = case((monthly, "monthly"), (half_yearly, "half_yearly"), else_="quarterly")
    period = case(*[(cadence == c, cadence_period(day, c)) for c in CADENCES])
    day_index = case(*[(cadence == c, (day - period_start(day, c)).days) for c in CADENCES])
    quiet_since = now - timedelta(days=settings.follow_up_quiet_days)
    return (
        select(*candidate_columns(period, cadence, literal(0)))
        .join(m, m.customer_id == Customer.id)
        .where(
            m.frequency > 0,
            m.churn_risk < settings.win_back_risk,
            m.last_order_at <= quiet_since,
            Customer.id % SPREAD_DAYS <= day_index,
        )
    )


SPEC = CampaignSpec(
    key="follow_up",
    name="定期回访",
    kind="follow_up",
    category="follow_up",
    priority=30,
    per_item=False,
    candidates=candidates,
    composer="follow_up",
    responses=("utter_care_follow_up", "utter_care_follow_up_general"),
)
