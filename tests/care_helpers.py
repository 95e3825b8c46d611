"""Care campaigns for tests: the rows and offers the demo seed makes, and their coupons."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from crm_store.campaigns import Campaign, get_campaign
from crm_store.campaigns.planning import ensure_campaigns
from crm_store.campaigns.rules import birthday_offer_key, win_back_offer_key
from crm_store.clock import fixed
from crm_store.errors import NotFound
from crm_store.offers import Coupon, create_offer, get_offer, issue_coupon


def a_campaign(session: Session, key: str, now: datetime | None = None) -> Campaign:
    """A campaign of the seed (made when missing, switched on as the demo's are, with this
    half-year's win-back offers)."""
    if now is None:
        ensure_campaigns(session, enabled=True)
    else:
        ensure_campaigns(session, clock=fixed(now), enabled=True)
    return get_campaign(session, key=key)


def a_win_back_coupon(session: Session, customer_id: int, period: str, now: datetime) -> Coupon:
    a_campaign(session, "win_back", now)
    offer_key = win_back_offer_key(period, 1)
    return issue_coupon(session, offer_key=offer_key, customer_id=customer_id, clock=fixed(now))


def a_birthday_coupon(
    session: Session, customer_id: int, tier: str, year: str, now: datetime
) -> Coupon:
    offer_key = birthday_offer_key(year, tier)
    try:
        get_offer(session, key=offer_key)
    except NotFound:
        create_offer(
            session, key=offer_key, name="生日礼券", kind="amount_off", value=5_000, valid_days=30
        )
    return issue_coupon(session, offer_key=offer_key, customer_id=customer_id, clock=fixed(now))
