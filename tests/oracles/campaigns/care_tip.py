"""Care tips for products the customer owns: monthly per product while under warranty.

A product's tip is due on the day of the month its warranty ends (on the month's last day also
for the days that month lacks), once it has been owned `care_tip_min_days`, and not in the last
`warranty_notice_days` of its warranty (the warranty reminder speaks then). Period: "<sku>-2026-11".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from crm_store.campaigns.rules import PlanSettings, month_period
from tests.oracles.campaigns.facts import CustomerFacts, Decision, OwnedItem, due


def tip_day(warranty_ends_on: date, day: date) -> bool:
    """Whether `day` is the item's monthly tip day."""
    is_last = (day + timedelta(days=1)).month != day.month
    if is_last:
        return warranty_ends_on.day >= day.day
    return warranty_ends_on.day == day.day


def eligible(
    facts: CustomerFacts,
    items: Iterable[OwnedItem],
    day: date,
    *,
    now: datetime,
    settings: PlanSettings | None = None,
) -> list[Decision]:
    """One decision per item due a tip today; the most expensive first."""
    settings = settings or PlanSettings()
    owned_since = now - timedelta(days=settings.care_tip_min_days)
    notice_from = day + timedelta(days=settings.warranty_notice_days)
    return [
        due(
            facts,
            day,
            now,
            settings,
            period=f"{item.sku}-{month_period(day)}",
            detail=item.sku,
            rank=-item.unit_price_cents,
        )
        for item in items
        if tip_day(item.warranty_ends_on, day)
        and item.warranty_ends_on > notice_from
        and item.placed_at <= owned_since
    ]
