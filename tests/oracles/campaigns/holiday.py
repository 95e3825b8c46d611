"""Holiday greetings on the first day of a Chinese festival, from the `holidays` calendar."""

from __future__ import annotations

from datetime import date, datetime

from crm_store.campaigns.rules import PlanSettings, holiday_on
from tests.oracles.campaigns.facts import NOT_DUE, CustomerFacts, Decision, due


def eligible(
    facts: CustomerFacts, day: date, *, now: datetime, settings: PlanSettings | None = None
) -> Decision:
    """Everyone, on a greeted festival's first day; period "2026-spring_festival"."""
    settings = settings or PlanSettings()
    key = holiday_on(day, settings)
    if key is None:
        return NOT_DUE
    return due(facts, day, now, settings, period=f"{day.year}-{key}", detail=key)
