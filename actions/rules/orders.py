"""When a parcel should arrive: the carrier's usual transit time after it left the warehouse."""

from __future__ import annotations

from datetime import date, datetime, timedelta

# Working days a carrier usually needs inside mainland China; unknown carriers get the slowest.
TRANSIT_DAYS = {"顺丰速运": 2, "京东物流": 2, "中通快递": 3}
DEFAULT_TRANSIT_DAYS = 4


def expected_delivery(carrier: str | None, shipped_at: datetime, today: date) -> date:
    """The day the parcel should arrive; never in the past while it is still on its way."""
    days = TRANSIT_DAYS.get(carrier or "", DEFAULT_TRANSIT_DAYS)
    return max(shipped_at.date() + timedelta(days=days), today)
