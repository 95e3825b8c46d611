"""Follow-up visits (回访) on a cadence by customer type, from the customer's metrics.

Frequent low-price buyers (at least `frequent_orders` orders averaging under `low_price_cents`)
monthly; rare high-price buyers (at most `rare_orders` averaging `high_price_cents` or more)
half-yearly; every other buyer quarterly. Never buyers, customers at win-back risk (they get the
win-back offer instead) and anyone who ordered in the last `follow_up_quiet_days` (the delivery
follow-up covers them) are not visited. Within a period a customer is due from day
`customer_id % 28`, so a period's visits spread over four weeks.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from crm_store.campaigns.rules import (
    PlanSettings,
    cadence_period,
    follow_up_cadence,
    period_start,
    spread_offset,
)
from tests.oracles.campaigns.facts import NOT_DUE, CustomerFacts, Decision, due


def eligible(
    facts: CustomerFacts, day: date, *, now: datetime, settings: PlanSettings | None = None
) -> Decision:
    settings = settings or PlanSettings()
    if not _visited(facts, now, settings):
        return NOT_DUE
    cadence = follow_up_cadence(facts.frequency, facts.monetary_cents, settings)
    if (day - period_start(day, cadence)).days < spread_offset(facts.customer_id):
        return NOT_DUE
    return due(facts, day, now, settings, period=cadence_period(day, cadence), detail=cadence)


def _visited(facts: CustomerFacts, now: datetime, settings: PlanSettings) -> bool:
    quiet_since = now - timedelta(days=settings.follow_up_quiet_days)
    return (
        facts.frequency > 0
        and facts.churn_risk < settings.win_back_risk
        and facts.last_order_at is not None
        and facts.last_order_at <= quiet_since
    )
