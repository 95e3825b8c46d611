"""Offers and their coupon codes: issued (one per customer per offer), redeemed, expired."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.models import COUPON_STATUSES, OFFER_KINDS
from crm_store.models import Coupon as CouponRow
from crm_store.models import Customer as CustomerRow
from crm_store.models import Offer as OfferRow
from crm_store.validation import check_choice, check_non_negative, check_positive, check_text

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: codes get read aloud
CODE_LENGTH = 10


@dataclass(frozen=True)
class Offer:
    id: int
    key: str
    name: str
    kind: str
    value: int
    min_spend_cents: int
    valid_days: int
    active: bool


@dataclass(frozen=True)
class Coupon:
    id: int
    code: str
    offer_id: int
    customer_id: int
    status: str
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    order_id: str | None


def discount_cents(offer: Offer, order_total_cents: int) -> int:
    """What the coupon takes off an order of this total (0 below the minimum spend)."""
    if order_total_cents < offer.min_spend_cents or offer.kind == "points":
        return 0
    if offer.kind == "percent_off":
        return order_total_cents * offer.value // 100
    return min(offer.value, order_total_cents)


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def _offer(row: OfferRow) -> Offer:
    return Offer(
        row.id,
        row.key,
        row.name,
        row.kind,
        row.value,
        row.min_spend_cents,
        row.valid_days,
        bool(row.active),
    )


def _coupon(row: CouponRow) -> Coupon:
    return Coupon(
        row.id,
        row.code,
        row.offer_id,
        row.customer_id,
        row.status,
        row.issued_at,
        row.expires_at,
        row.redeemed_at,
        row.order_id,
    )


def create_offer(
    session: Session,
    *,
    key: str,
    name: str,
    kind: str,
    value: int,
    valid_days: int,
    min_spend_cents: int = 0,
    clock: Clock = utcnow,
) -> Offer:
    check_choice(kind, OFFER_KINDS, "offer kind")
    if kind == "percent_off" and not 0 < value < 100:
        raise InvalidInput("a percentage discount is between 1 and 99")
    row = OfferRow(
        key=check_text(key, "key", 48),
        name=check_text(name, "name", 64),
        kind=kind,
        value=check_positive(value, "value"),
        valid_days=check_positive(valid_days, "valid days"),
        min_spend_cents=check_non_negative(min_spend_cents, "minimum spend"),
        active=True,
        created_at=clock(),
    )
    if not try_insert(session, row):
        raise Conflict(f"an offer with key {key} exists")
    return _offer(row)


def get_offer_by_id(session: Session, *, offer_id: int) -> Offer:
    row = session.get(OfferRow, offer_id)
    if row is None:
        raise NotFound(f"no offer {offer_id}")
    return _offer(row)


def get_offer(session: Session, *, key: str) -> Offer:
    row = session.scalars(select(OfferRow).where(OfferRow.key == key)).first()
    if row is None:
        raise NotFound(f"no offer {key}")
    return _offer(row)


def list_offers(session: Session, *, active_only: bool = True) -> list[Offer]:
    query = select(OfferRow).order_by(OfferRow.id)
    if active_only:
        query = query.where(OfferRow.active.is_(True))
    return [_offer(row) for row in session.scalars(query)]


def _existing_coupon(session: Session, offer_id: int, customer_id: int) -> CouponRow | None:
    query = select(CouponRow).where(
        CouponRow.offer_id == offer_id, CouponRow.customer_id == customer_id
    )
    return session.scalars(query).first()


def issue_coupon(
    session: Session, *, offer_key: str, customer_id: int, clock: Clock = utcnow
) -> Coupon:
    """The customer's coupon for this offer; issuing twice returns the first one."""
    offer = get_offer(session, key=offer_key)
    if not offer.active:
        raise Conflict(f"offer {offer_key} is no longer active")
    if session.get(CustomerRow, customer_id) is None:
        raise NotFound(f"no customer {customer_id}")
    for _ in range(5):
        existing = _existing_coupon(session, offer.id, customer_id)
        if existing is not None:
            return _coupon(existing)
        now = clock()
        row = CouponRow(
            code=new_code(),
            offer_id=offer.id,
            customer_id=customer_id,
            status="issued",
            issued_at=now,
            expires_at=now + timedelta(days=offer.valid_days),
        )
        if try_insert(session, row):
            return _coupon(row)
    raise Conflict("could not issue a unique coupon code")  # pragma: no cover


def find_coupon(session: Session, *, code: str) -> Coupon | None:
    row = session.scalars(select(CouponRow).where(CouponRow.code == code.strip().upper())).first()
    return _coupon(row) if row else None


def redeem_coupon(
    session: Session,
    *,
    code: str,
    customer_id: int,
    order_id: str | None = None,
    clock: Clock = utcnow,
) -> Coupon:
    """Use the coupon once. One guarded UPDATE: of two concurrent redemptions only one wins."""
    now, code = clock(), code.strip().upper()
    result = session.execute(
        update(CouponRow)
        .where(
            CouponRow.code == code,
            CouponRow.customer_id == customer_id,
            CouponRow.status == "issued",
            CouponRow.expires_at > now,
        )
        .values(status="redeemed", redeemed_at=now, order_id=order_id)
        .execution_options(synchronize_session=False)
    )
    row = session.scalars(
        select(CouponRow).where(CouponRow.code == code).execution_options(populate_existing=True)
    ).first()
    if row is None or row.customer_id != customer_id:
        raise NotFound(f"customer {customer_id} has no coupon {code}")
    if result.rowcount == 0:
        raise Conflict(f"coupon {code} is {row.status if row.status != 'issued' else 'expired'}")
    return _coupon(row)


def expire_coupons(session: Session, *, clock: Clock = utcnow) -> int:
    """Mark every issued coupon past its expiry as expired, in one statement; how many."""
    result = session.execute(
        update(CouponRow)
        .where(CouponRow.status == "issued", CouponRow.expires_at <= clock())
        .values(status="expired")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


def list_coupons(session: Session, *, customer_id: int, status: str | None = None) -> list[Coupon]:
    query = (
        select(CouponRow)
        .where(CouponRow.customer_id == customer_id)
        .order_by(CouponRow.issued_at.desc(), CouponRow.id.desc())
    )
    if status is not None:
        query = query.where(CouponRow.status == check_choice(status, COUPON_STATUSES, "status"))
    return [_coupon(row) for row in session.scalars(query)]
