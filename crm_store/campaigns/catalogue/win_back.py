"""老客召回: buyers at churn risk get a personal coupon once per half-year, its level by CLV and
tier; a reproducible control group gets nothing, so the uplift can be measured."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import case, literal, select
from sqlalchemy.sql import Select

from crm_store.campaigns.candidates import candidate_columns
from crm_store.campaigns.rules import (
    WIN_BACK_OFFERS,
    PlanSettings,
    half_year_period,
    win_back_offer_key,
)
from crm_store.campaigns.spec import CampaignSpec, CouponOffers
from crm_store.models import Customer, CustomerMetrics


def candidates(day: date, now: datetime, settings: PlanSettings) -> Select:
    m = CustomerMetrics
    period = half_year_period(day)
    low, high = settings.clv_levels
    level = 1 + case((m.clv_cents >= low, 1), else_=0) + case((m.clv_cents >= high, 1), else_=0)
    level = level + case((Customer.tier.in_(("金卡", "钻石")), 1), else_=0)
    offer = case(
        *[(level == n, win_back_offer_key(period, n)) for n in (1, 2)],
        else_=win_back_offer_key(period, 3),
    )
    return (
        select(*candidate_columns(literal(period), offer, -m.churn_risk))
        .join(m, m.customer_id == Customer.id)
        .where(m.frequency > 0, m.churn_risk >= settings.win_back_risk)
    )


def level_offers(period: str) -> Mapping[str, tuple[int, int]]:
    return {
        win_back_offer_key(period, level): (value, min_spend)
        for level, (value, min_spend) in WIN_BACK_OFFERS.items()
    }


SPEC = CampaignSpec(
    key="win_back",
    name="老客召回",
    kind="win_back",
    category="offer",
    priority=70,
    per_item=False,
    candidates=candidates,
    composer="win_back",
    responses=("utter_care_win_back",),
    control_group_period=half_year_period,
    coupons=CouponOffers(period=half_year_period, offers=level_offers, made_with_campaign=True),
)
