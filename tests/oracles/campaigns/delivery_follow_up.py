"""D+3 after delivery: "用得怎么样？", which starts the survey (EXTERNAL_survey).

Due from the third day after the delivery (the shop's calendar, crm_store.clock.BUSINESS_TZ) and
caught up until the seventh, when the budget or a second delivery pushed it back; period: the order
id.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from crm_store.campaigns.rules import PlanSettings, local_date
from tests.oracles.campaigns.facts import CustomerFacts, Decision, Delivery, due


def eligible(
    facts: CustomerFacts,
    deliveries: Iterable[Delivery],
    day: date,
    *,
    now: datetime,
    settings: PlanSettings | None = None,
) -> list[Decision]:
    """One decision per delivered order in its follow-up window; the earliest delivery first."""
    settings = settings or PlanSettings()
    first, last = settings.delivery_days
    return [
        due(
            facts,
            day,
            now,
            settings,
            period=d.order_id,
            detail=d.order_id,
            rank=d.delivered_at.timestamp(),
        )
        for d in deliveries
        if first <= (day - local_date(d.delivered_at)).days <= last
    ]
