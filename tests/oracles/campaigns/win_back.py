"""Win-back: a buyer whose churn risk reached the threshold gets an offer once per half-year.

The offer's level (1-3) follows the customer lifetime value, one level up for gold and diamond
members; its coupon is issued when the outbox row is written. A reproducible share of the
candidates (the control group: bucket of customer id and period below `control_share`) gets
nothing, so the uplift can be measured.
"""

from __future__ import annotations

from datetime import date, datetime

from crm_store.campaigns.rules import (
    PlanSettings,
    control_bucket,
    half_year_period,
    win_back_level,
    win_back_offer_key,
)
from tests.oracles.campaigns.facts import NOT_DUE, CustomerFacts, Decision, due


def in_control_group(customer_id: int, period: str, settings: PlanSettings) -> bool:
    return control_bucket(customer_id, period) < settings.control_share


def eligible(
    facts: CustomerFacts, day: date, *, now: datetime, settings: PlanSettings | None = None
) -> Decision:
    settings = settings or PlanSettings()
    if facts.frequency == 0 or facts.churn_risk < settings.win_back_risk:
        return NOT_DUE
    period = half_year_period(day)
    level = win_back_level(facts.clv_cents, facts.tier, settings)
    return due(
        facts,
        day,
        now,
        settings,
        period=period,
        detail=win_back_offer_key(period, level),
        rank=-facts.churn_risk,
    )
