"""使用小贴士: monthly per owned product, on the day of the month its warranty ends
(rules.care_tip_dates); the most expensive product first."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import literal
from sqlalchemy.sql import Select

from crm_store.campaigns.candidates import candidate_columns, owned_items
from crm_store.campaigns.rules import PlanSettings, care_tip_dates, month_period
from crm_store.campaigns.spec import CampaignSpec
from crm_store.models import Order, OrderItem


def candidates(day: date, now: datetime, settings: PlanSettings) -> Select:
    period = OrderItem.sku + literal(f"-{month_period(day)}")
    owned_since = now - timedelta(days=settings.care_tip_min_days)
    columns = candidate_columns(period, OrderItem.sku, -OrderItem.unit_price_cents)
    return owned_items(*columns).where(
        OrderItem.warranty_ends_on.in_(care_tip_dates(day, settings)),
        Order.placed_at <= owned_since,
    )


SPEC = CampaignSpec(
    key="care_tip",
    name="使用小贴士",
    kind="care_tip",
    category="care",
    priority=60,
    per_item=True,
    candidates=candidates,
    composer="care_tip",
    responses=("utter_care_tip_generic",),
)
