"""The numbers and small pure rules that campaign planning shares between SQL and Python.

The candidate queries (catalogue/) and the planning pipeline (planning.py) turn them into
set-based SQL; tests/oracles/campaigns/ and tests/oracles/budget.py apply them to one
customer's facts.
Both import them from here, so a threshold has one home. docs/campaigns.md explains every value.
"""

from __future__ import annotations

import calendar
import re
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from crm_store.clock import BUSINESS_TZ
from crm_store.customers import in_quiet_hours

# Order and delivery times become dates in the shop's time zone, crm_store.clock.BUSINESS_TZ.
# holidays' English name of a festival -> our key; the festival's first day gets the greeting.
# Qingming (a day of mourning) and Labour Day are not greeted.
GREETED_HOLIDAYS = {
    "New Year's Day": "new_year",
    "Chinese New Year (Spring Festival)": "spring_festival",
    "Dragon Boat Festival": "dragon_boat",
    "Mid-Autumn Festival": "mid_autumn",
    "National Day": "national_day",
}
CADENCES = ("monthly", "quarterly", "half_yearly")
SPREAD_DAYS = 28  # periodic campaigns spread customers over the first 28 days of a period
TIER_CODES = {"普通": "basic", "银卡": "silver", "金卡": "gold", "钻石": "diamond"}


@dataclass(frozen=True)
class Gift:
    """A birthday gift: points credited when the greeting goes out, or a coupon planned with it."""

    kind: str  # "points" or "coupon"
    value: int  # points, or cents off
    min_spend_cents: int = 0


BIRTHDAY_GIFTS = {
    "普通": Gift("points", 100),
    "银卡": Gift("points", 300),
    "金卡": Gift("coupon", 5_000, 20_000),
    "钻石": Gift("coupon", 10_000, 30_000),
}
# Win-back offer levels: (cents off, minimum spend in cents).
WIN_BACK_OFFERS = {1: (2_000, 10_000), 2: (5_000, 30_000), 3: (10_000, 50_000)}
COUPON_VALID_DAYS = 30


@dataclass(frozen=True)
class PlanSettings:
    """Campaign thresholds; the defaults are the documented policy (docs/campaigns.md)."""

    send_at: time = time(10, 0)  # local wall-clock time a planned message is due
    weekly_cap: int = 2  # proactive messages per customer per rolling 7 days
    delivery_days: tuple[int, int] = (3, 7)  # delivery follow-up from D+3, caught up until D+7
    warranty_notice_days: int = 30  # warranty reminder from 30 days before the end
    care_tip_min_days: int = 14  # no tip before the product has been owned two weeks
    follow_up_quiet_days: int = 14  # no follow-up within two weeks of an order
    frequent_orders: int = 4  # monthly: at least 4 orders ...
    low_price_cents: int = 50_000  # ... averaging under 500 yuan
    rare_orders: int = 2  # half-yearly: at most 2 orders ...
    high_price_cents: int = 100_000  # ... averaging at least 1,000 yuan
    win_back_risk: int = 60  # churn risk (0-100) from which a buyer gets a win-back offer
    control_share: int = 10  # percent of win-back candidates held out as the control group
    clv_levels: tuple[int, int] = (100_000, 500_000)  # CLV cents from which level 2, level 3
    greeted_holidays: dict[str, str] = field(default_factory=lambda: dict(GREETED_HOLIDAYS))


def month_period(day: date) -> str:
    return f"{day:%Y-%m}"


def quarter_period(day: date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def half_year_period(day: date) -> str:
    return f"{day.year}-H{1 if day.month <= 6 else 2}"


def period_start(day: date, cadence: str) -> date:
    months = {"monthly": 1, "quarterly": 3, "half_yearly": 6}[cadence]
    return date(day.year, (day.month - 1) // months * months + 1, 1)


def cadence_period(day: date, cadence: str) -> str:
    namer = {"monthly": month_period, "quarterly": quarter_period, "half_yearly": half_year_period}
    return namer[cadence](day)


def spread_offset(customer_id: int) -> int:
    """The day of a period (0-based) from which the customer is due: spreads a period's load."""
    return customer_id % SPREAD_DAYS


def follow_up_cadence(frequency: int, monetary_cents: int, settings: PlanSettings) -> str:
    """Frequent low-price buyers monthly, rare high-price buyers half-yearly, others quarterly."""
    if (
        frequency >= settings.frequent_orders
        and monetary_cents < settings.low_price_cents * frequency
    ):
        return "monthly"
    if (
        frequency <= settings.rare_orders
        and monetary_cents >= settings.high_price_cents * frequency
    ):
        return "half_yearly"
    return "quarterly"


def win_back_level(clv_cents: int, tier: str, settings: PlanSettings) -> int:
    """1-3 by customer lifetime value; gold and diamond members one level up (at most 3)."""
    level = 1 + sum(clv_cents >= threshold for threshold in settings.clv_levels)
    return min(3, level + (1 if tier in ("金卡", "钻石") else 0))


# The keys of the offers the campaigns make for one customer each (win_back_offer_key,
# birthday_offer_key): never listed to whoever asks for offers.
_CAMPAIGN_OFFER = re.compile(r"win_back_\d{4}-H[12]_l\d|birthday_\d{4}_[a-z]+")


def is_campaign_offer(offer_key: str) -> bool:
    return _CAMPAIGN_OFFER.fullmatch(offer_key) is not None


def win_back_offer_key(period: str, level: int) -> str:
    return f"win_back_{period}_l{level}"


def birthday_offer_key(period: str, tier: str) -> str:
    return f"birthday_{period}_{TIER_CODES[tier]}"


def control_salt(period: str) -> int:
    return zlib.crc32(period.encode()) % 1_000_003


def control_bucket(customer_id: int, period: str) -> int:
    """0-99, stable for a customer and period, spread evenly: the control group is those below
    the share. Integer arithmetic only, so SQL computes the same bucket."""
    return (customer_id * 2_654_435_761 + control_salt(period)) % 1_000_003 % 100


@lru_cache(maxsize=16)
def _china_holidays(year: int) -> dict[date, str]:
    return dict(holidays.country_holidays("CN", years=year, language="en_US").items())


def holiday_on(day: date, settings: PlanSettings) -> str | None:
    """The greeted festival whose first day is `day`, from the maintained `holidays` calendar."""
    calendar = _china_holidays(day.year)
    key = settings.greeted_holidays.get(calendar.get(day, ""))
    if key is None or calendar.get(day - timedelta(days=1)) == calendar[day]:
        return None
    return key


def care_tip_dates(day: date, settings: PlanSettings, years: int = 10) -> list[date]:
    """The warranty end dates whose items get a care tip on `day`: the same day of the month
    (on a month's last day, also the later days other months have), past the reminder's notice.
    A list, so that SQL looks them up in the warranty index instead of scanning every item."""
    is_last = (day + timedelta(days=1)).month != day.month
    first = day + timedelta(days=settings.warranty_notice_days + 1)
    dates = []
    for month_index in range(day.month - 1, day.month - 1 + 12 * years):
        year, month = day.year + month_index // 12, month_index % 12 + 1
        days_in_month = calendar.monthrange(year, month)[1]
        last = days_in_month if is_last else min(day.day, days_in_month)
        dates += [date(year, month, d) for d in range(day.day, last + 1) if d <= days_in_month]
    return [d for d in dates if d >= first]


def local_date(moment: datetime) -> date:
    """The shop's calendar date of a stored UTC time (orders, deliveries)."""
    return moment.astimezone(BUSINESS_TZ).date()


def business_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), BUSINESS_TZ)


def same_day_window(day: date) -> tuple[datetime, datetime]:
    """The due times that count as `day` for "one message per campaign a day": the shop's day
    widened by 12 hours each side, so a customer in another time zone is covered too."""
    return business_midnight(day) - timedelta(hours=12), business_midnight(day) + timedelta(
        hours=36
    )


def defer_past_quiet_hours(local: datetime, start: time | None, end: time | None) -> datetime:
    """`local` itself, or the end of the quiet hours it falls in (the next morning when the
    window wraps midnight and `local` is before it)."""
    if not in_quiet_hours(local.timetz().replace(tzinfo=None), start, end):
        return local
    assert end is not None  # in_quiet_hours is False without a window
    moved = datetime.combine(local.date(), end, local.tzinfo)
    return moved if moved > local else moved + timedelta(days=1)


def send_time(
    day: date, timezone: str, quiet: tuple[time | None, time | None], send_at: time, now: datetime
) -> tuple[datetime, bool]:
    """(UTC time a message planned for the customer's local `day` is due, deferred by quiet
    hours?). Never before `now`: a message planned late is due at once, unless that is quiet."""
    zone = ZoneInfo(timezone)
    nominal = max(datetime.combine(day, send_at, zone), now.astimezone(zone))
    due = defer_past_quiet_hours(nominal, *quiet)
    return due.astimezone(ZoneInfo("UTC")), due != nominal


def next_planning(now: datetime, plan_at: time) -> datetime:
    """The care scheduler's next daily planning run after `now` (`plan_at` is a UTC time)."""
    today = datetime.combine(now.astimezone(timezone.utc).date(), plan_at, timezone.utc)
    return today if today > now else today + timedelta(days=1)
