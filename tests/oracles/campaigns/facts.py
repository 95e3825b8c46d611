"""What the campaign rules look at: plain, frozen values (no ORM object, no session)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time

from crm_store.campaigns.rules import PlanSettings, send_time
from crm_store.clock import BUSINESS_TZ
from crm_store.customers import LunarBirthday


@dataclass(frozen=True)
class CustomerFacts:
    customer_id: int
    tier: str = "普通"
    timezone: str = BUSINESS_TZ.key  # a new customer's, as in crm_store.customers
    quiet_hours: tuple[time | None, time | None] = (time(22), time(8))
    birthday: date | None = None
    lunar_birthday: LunarBirthday | None = None
    celebrates_lunar_birthday: bool = False
    consents: Mapping[str, bool] = field(default_factory=dict)
    # From crm_store.analytics (customer_metrics); zeros for a customer never analysed.
    frequency: int = 0
    monetary_cents: int = 0
    last_order_at: datetime | None = None
    churn_risk: int = 0
    clv_cents: int = 0
    open_complaint: bool = False


@dataclass(frozen=True)
class OwnedItem:
    order_id: str
    sku: str
    unit_price_cents: int
    placed_at: datetime
    warranty_ends_on: date


@dataclass(frozen=True)
class Delivery:
    order_id: str
    delivered_at: datetime


@dataclass(frozen=True)
class Decision:
    """Due or not; when due, for which period, at what time, about what (gift, offer, sku)."""

    eligible: bool
    period: str | None = None
    scheduled_at: datetime | None = None
    deferred: bool = False  # the send time fell in quiet hours and moved to their end
    detail: str | None = None
    rank: float = 0  # several due the same day for one customer: the lowest goes first


NOT_DUE = Decision(False)


def due(
    facts: CustomerFacts,
    day: date,
    now: datetime,
    settings: PlanSettings,
    *,
    period: str,
    detail: str | None = None,
    rank: float = 0,
) -> Decision:
    """A due decision sent at the campaign's local time on `day`, past the quiet hours."""
    at, deferred = send_time(day, facts.timezone, facts.quiet_hours, settings.send_at, now)
    return Decision(True, period, at, deferred, detail, rank)
