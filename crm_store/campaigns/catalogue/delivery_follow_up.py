"""收货回访: D+3 after an order's first delivery (caught up until D+7); the message is the
post-purchase survey, asked by actions/survey.py."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.sql import Select

from crm_store.campaigns.candidates import candidate_columns
from crm_store.campaigns.rules import PlanSettings, business_midnight
from crm_store.campaigns.spec import SURVEY_INTENT, CampaignSpec
from crm_store.models import Customer, Order, ShippingEvent
from crm_store.orders import VOID_STATUSES


def candidates(day: date, now: datetime, settings: PlanSettings) -> Select:
    first, last = settings.delivery_days
    delivered = (
        select(ShippingEvent.order_id, func.min(ShippingEvent.occurred_at).label("at"))
        .where(
            ShippingEvent.status == "delivered",
            ShippingEvent.occurred_at >= business_midnight(day - timedelta(days=last)),
            ShippingEvent.occurred_at < business_midnight(day - timedelta(days=first - 1)),
        )
        .group_by(ShippingEvent.order_id)
        .subquery("delivered")
    )
    return (
        select(*candidate_columns(Order.id, Order.id, delivered.c.at))
        .select_from(delivered)
        .join(Order, Order.id == delivered.c.order_id)
        .join(Customer, Customer.id == Order.customer_id)
        .where(Order.status.not_in(VOID_STATUSES))
    )


SPEC = CampaignSpec(
    key="delivery_follow_up",
    name="收货回访",
    kind="survey",
    category="follow_up",
    priority=10,
    per_item=True,
    candidates=candidates,
    composer="action_check_survey_follow_up",
    responses=("utter_ask_survey_csat",),
    intent=SURVEY_INTENT,
    trigger_names_product=True,
)
