"""Injectable time: every function that needs "now" takes a `clock` so tests can pick the date.

And the brand's one time zone, `BUSINESS_TZ`: the shop's calendar (a campaign's day, an order's
delivery date, a return window), the dashboard's and the reports' days, the staff's clock, staffed
hours unless `CAREBOT_HANDOFF_TIMEZONE` says otherwise, and a new customer's zone until they have
their own. Read once, at import, from `CAREBOT_BUSINESS_TZ` (an IANA name), default
Asia/Shanghai. A customer's own hours (quiet hours, the times the bot tells them) are in
`customers.timezone`. WeChat's daily quotas keep WeChat's own day (bot/wechat_sim/state.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Clock = Callable[[], datetime]
BUSINESS_TZ_VARIABLE = "CAREBOT_BUSINESS_TZ"
DEFAULT_BUSINESS_TZ = "Asia/Shanghai"


def business_zone(environ: Mapping[str, str]) -> ZoneInfo:
    """The zone `CAREBOT_BUSINESS_TZ` names (unset or empty: Asia/Shanghai); a ValueError that
    says which setting is wrong for a name that is not a time zone."""
    name = environ.get(BUSINESS_TZ_VARIABLE) or DEFAULT_BUSINESS_TZ
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"{BUSINESS_TZ_VARIABLE}={name!r} is not a time zone") from error


BUSINESS_TZ = business_zone(os.environ)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def fixed(moment: datetime) -> Clock:
    """A clock that always answers `moment` (made timezone-aware as UTC if naive)."""
    aware = as_utc(moment)
    return lambda: aware


def as_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class ManualClock:
    """A clock that stands still until told to move; for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        self.now = as_utc(start)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now
