"""Birthday greetings on the customer's local birthday, Gregorian or lunar, with a gift by tier.

29 February birthdays are celebrated on 28 February in common years. A lunar birthday in a leap
month falls back to the plain month in years without that leap month, and the 30th of a month
that has 29 days this year is celebrated on the 29th (crm_store.customers.lunar_to_solar).
"""

from __future__ import annotations

from datetime import date, datetime

from crm_store.campaigns.rules import BIRTHDAY_GIFTS, Gift, PlanSettings, birthday_offer_key
from crm_store.customers import lunar_to_solar
from tests.oracles.campaigns.facts import NOT_DUE, CustomerFacts, Decision, due


def celebrates_on(facts: CustomerFacts, day: date) -> bool:
    """Whether the customer celebrates a birthday on `day`."""
    if facts.celebrates_lunar_birthday and facts.lunar_birthday:
        # A Gregorian year overlaps two lunar years: the date may come from either.
        lunar = facts.lunar_birthday
        return day in {lunar_to_solar(lunar, year) for year in (day.year - 1, day.year)}
    if facts.birthday is None:
        return False
    try:
        return facts.birthday.replace(year=day.year) == day
    except ValueError:  # 29 February in a common year
        return day == date(day.year, 2, 28)


def gift_for(tier: str) -> Gift:
    return BIRTHDAY_GIFTS[tier]


def gift_detail(tier: str, period: str) -> str:
    """Points ("points:300") or the offer key of the coupon planning issues."""
    gift = gift_for(tier)
    return birthday_offer_key(period, tier) if gift.kind == "coupon" else f"points:{gift.value}"


def eligible(
    facts: CustomerFacts, day: date, *, now: datetime, settings: PlanSettings | None = None
) -> Decision:
    """Due on the customer's local `day` when it is their birthday; period: the year."""
    if not celebrates_on(facts, day):
        return NOT_DUE
    period = str(day.year)
    return due(
        facts,
        day,
        now,
        settings or PlanSettings(),
        period=period,
        detail=gift_detail(facts.tier, period),
    )
