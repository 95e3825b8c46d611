"""保修到期提醒: from 30 days before a product's warranty ends until it ends; the soonest first."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import literal
from sqlalchemy.sql import Select

from crm_store.campaigns.candidates import candidate_columns, owned_items
from crm_store.campaigns.rules import PlanSettings
from crm_store.campaigns.spec import CampaignSpec
from crm_store.models import OrderItem


def candidates(day: date, now: datetime, settings: PlanSettings) -> Select:
    ends = OrderItem.warranty_ends_on
    period = OrderItem.order_id + literal("-") + OrderItem.sku
    return owned_items(*candidate_columns(period, OrderItem.sku, ends)).where(
        ends >= day, ends <= day + timedelta(days=settings.warranty_notice_days)
    )


SPEC = CampaignSpec(
    key="warranty_reminder",
    name="保修到期提醒",
    kind="care_tip",
    category="care",
    priority=20,
    per_item=True,
    candidates=candidates,
    composer="warranty_reminder",
    responses=("utter_care_warranty_reminder",),
)
