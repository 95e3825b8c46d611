"""A maintenance reminder from `warranty_notice_days` (30) before a product's warranty ends.

Due every day of that window until it was planned once (period "<order id>-<sku>"), so a day
lost to the budget or to a second item is caught up; the item ending first goes first.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from crm_store.campaigns.rules import PlanSettings
from tests.oracles.campaigns.facts import CustomerFacts, Decision, OwnedItem, due


def eligible(
    facts: CustomerFacts,
    items: Iterable[OwnedItem],
    day: date,
    *,
    now: datetime,
    settings: PlanSettings | None = None,
) -> list[Decision]:
    settings = settings or PlanSettings()
    last_day = day + timedelta(days=settings.warranty_notice_days)
    return [
        due(
            facts,
            day,
            now,
            settings,
            period=f"{item.order_id}-{item.sku}",
            detail=item.sku,
            rank=item.warranty_ends_on.toordinal(),
        )
        for item in items
        if day <= item.warranty_ends_on <= last_day
    ]
