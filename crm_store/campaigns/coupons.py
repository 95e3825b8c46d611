"""Coupons planned with the outbox row, so the message and a redemption see one code.

A campaign whose spec has `coupons` (crm_store.campaigns.spec.CouponOffers) names an offer in
each candidate's `detail`; planning makes the period's offers when missing and issues each
written pending row's coupon in the same transaction (docs/campaigns.md).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Table, and_, select
from sqlalchemy.orm import Session

from crm_store.campaigns.pipeline import insert_ignoring_duplicates
from crm_store.campaigns.registry import find_spec
from crm_store.campaigns.rows import Campaign
from crm_store.campaigns.rules import COUPON_VALID_DAYS
from crm_store.campaigns.spec import CampaignSpec, CouponOffers
from crm_store.clock import Clock
from crm_store.models import CareMessage, Coupon, Offer
from crm_store.offers import Coupon as CouponRecord
from crm_store.offers import create_offer, find_coupon, new_code


def ensure_offers(session: Session, coupons: CouponOffers, period: str, clock: Clock) -> None:
    """The period's offers of a campaign's coupons, made when missing."""
    for key, (value, min_spend) in coupons.offers(period).items():
        if session.scalar(select(Offer.id).where(Offer.key == key)) is None:
            create_offer(
                session,
                key=key,
                name=key,
                kind="amount_off",
                value=value,
                min_spend_cents=min_spend,
                valid_days=COUPON_VALID_DAYS,
                clock=clock,
            )


def issue_coupons(
    session: Session,
    campaign: Campaign,
    spec: CampaignSpec,
    outcomes: Table,
    day: date,
    now: datetime,
) -> None:
    """A coupon for every pending row this run wrote whose detail names an offer."""
    if spec.coupons is None:
        return
    period = spec.coupons.period(day)
    ensure_offers(session, spec.coupons, period, lambda: now)
    prefix = spec.coupons.prefix(spec.key, period)
    wanted = _coupons_wanted(session, campaign, outcomes, prefix, now)
    for _ in range(5):  # a code clash (1 in 10^14) leaves that row for the next round
        missing = _without_coupon(session, wanted)
        if not missing:
            return
        _insert_coupons(session, missing, now)


def find_message_coupon(
    session: Session, *, customer_id: int, campaign_key: str, period: str
) -> CouponRecord | None:
    """The coupon planning issued for this message (win-back offer, birthday gift), if any."""
    spec = find_spec(campaign_key)
    if spec is None or spec.coupons is None:
        return None
    prefix = spec.coupons.prefix(campaign_key, period)
    query = (
        select(Coupon.code)
        .join(Offer, Offer.id == Coupon.offer_id)
        .where(Coupon.customer_id == customer_id, Offer.key.startswith(prefix, autoescape=True))
    )
    code = session.scalars(query).first()
    return None if code is None else find_coupon(session, code=code)


def _coupons_wanted(
    session: Session, campaign: Campaign, outcomes: Table, prefix: str, now: datetime
) -> list[tuple[int, str]]:
    """(customer id, offer key) of this run's pending rows that carry a coupon."""
    o = outcomes.c
    query = (
        select(o.customer_id, o.detail)
        .join(
            CareMessage,
            and_(
                CareMessage.customer_id == o.customer_id,
                CareMessage.campaign_id == campaign.id,
                CareMessage.period == o.period,
            ),
        )
        .where(CareMessage.state == "pending", CareMessage.created_at == now)
        .where(o.detail.startswith(prefix, autoescape=True))
    )
    return [(row.customer_id, row.detail) for row in session.execute(query)]


def _without_coupon(session: Session, wanted: list[tuple[int, str]]) -> list[tuple[int, int, int]]:
    """(customer id, offer id, valid days) of the wanted coupons not issued yet."""
    keys = {key for _, key in wanted}
    offers = dict(session.execute(select(Offer.key, Offer.id).where(Offer.key.in_(keys))).all())
    valid = dict(
        session.execute(select(Offer.id, Offer.valid_days).where(Offer.key.in_(keys))).all()
    )
    issued = set(
        session.execute(
            select(Coupon.customer_id, Coupon.offer_id).where(Coupon.offer_id.in_(offers.values()))
        ).all()
    )
    return [
        (customer, offers[key], valid[offers[key]])
        for customer, key in wanted
        if (customer, offers[key]) not in issued
    ]


def _insert_coupons(session: Session, missing: list[tuple[int, int, int]], now: datetime) -> None:
    rows = [
        {
            "code": new_code(),
            "offer_id": offer_id,
            "customer_id": customer_id,
            "status": "issued",
            "issued_at": now,
            "expires_at": now + timedelta(days=valid_days),
        }
        for customer_id, offer_id, valid_days in missing
    ]
    session.execute(insert_ignoring_duplicates(session, Coupon), rows)
