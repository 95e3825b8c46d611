"""生日祝福: the customer's birthday (Gregorian, or lunar for those who chose it), with a gift
by tier: points credited when the greeting goes out, or a coupon planned with it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime

from sqlalchemy import case, literal, null, or_, select
from sqlalchemy.sql import Select

from crm_store.campaigns.candidates import candidate_columns
from crm_store.campaigns.rules import BIRTHDAY_GIFTS, PlanSettings, birthday_offer_key
from crm_store.campaigns.spec import CampaignSpec, CouponOffers
from crm_store.customers import _gregorian_on, _lunar_on
from crm_store.models import Customer


def candidates(day: date, now: datetime, settings: PlanSettings) -> Select:
    period = str(day.year)
    gift = case(
        *[(Customer.tier == tier, literal(gift_detail(tier, period))) for tier in BIRTHDAY_GIFTS],
        else_=null(),
    )
    return select(*candidate_columns(literal(period), gift, literal(0))).where(
        or_(_gregorian_on(day), _lunar_on(day))
    )


def gift_detail(tier: str, period: str) -> str:
    gift = BIRTHDAY_GIFTS[tier]
    return birthday_offer_key(period, tier) if gift.kind == "coupon" else f"points:{gift.value}"


def year_period(day: date) -> str:
    return str(day.year)


def gift_offers(period: str) -> Mapping[str, tuple[int, int]]:
    """The year's coupon gifts (gold and diamond members)."""
    return {
        birthday_offer_key(period, tier): (gift.value, gift.min_spend_cents)
        for tier, gift in BIRTHDAY_GIFTS.items()
        if gift.kind == "coupon"
    }


SPEC = CampaignSpec(
    key="birthday",
    name="生日祝福",
    kind="birthday",
    category="care",
    priority=40,
    per_item=False,
    candidates=candidates,
    composer="birthday",
    responses=("utter_care_birthday", "utter_care_birthday_coupon"),
    coupons=CouponOffers(period=year_period, offers=gift_offers),
)
