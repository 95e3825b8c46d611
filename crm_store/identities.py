"""Channel identities (web user/session ids, WeChat openid/unionid) linked to one customer each."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.clock import Clock, utcnow
from crm_store.customers import Customer, to_record
from crm_store.errors import Conflict, NotFound
from crm_store.models import IDENTITY_KINDS, ChannelIdentity
from crm_store.models import Customer as CustomerRow
from crm_store.validation import check_choice, check_text


@dataclass(frozen=True)
class Identity:
    id: int
    customer_id: int
    kind: str
    value: str
    created_at: datetime


def channel_of(kind: str) -> str:
    return "wechat" if kind.startswith("wechat") else "web"


def _record(row: ChannelIdentity) -> Identity:
    return Identity(row.id, row.customer_id, row.kind, row.value, row.created_at)


def _existing(session: Session, kind: str, value: str) -> ChannelIdentity | None:
    query = select(ChannelIdentity).where(
        ChannelIdentity.kind == kind, ChannelIdentity.value == value
    )
    return session.scalars(query).first()


def link_identity(
    session: Session, *, customer_id: int, kind: str, value: str, clock: Clock = utcnow
) -> Identity:
    """Idempotent for the same customer; an identity of another customer raises Conflict
    (two customers are never merged silently)."""
    check_choice(kind, IDENTITY_KINDS, "identity kind")
    value = check_text(value, "identity value", 128)
    if session.get(CustomerRow, customer_id) is None:
        raise NotFound(f"no customer {customer_id}")
    row = ChannelIdentity(customer_id=customer_id, kind=kind, value=value, created_at=clock())
    if try_insert(session, row):
        return _record(row)
    existing = _existing(session, kind, value)
    if existing is None or existing.customer_id != customer_id:
        raise Conflict(f"{kind} {value} is linked to another customer")
    return _record(existing)


def find_customer_by_identity(session: Session, *, kind: str, value: str) -> Customer | None:
    check_choice(kind, IDENTITY_KINDS, "identity kind")
    query = (
        select(CustomerRow)
        .join(ChannelIdentity, ChannelIdentity.customer_id == CustomerRow.id)
        .where(ChannelIdentity.kind == kind, ChannelIdentity.value == value)
    )
    row = session.scalars(query).first()
    return to_record(row) if row else None


def list_identities(session: Session, *, customer_id: int) -> list[Identity]:
    query = (
        select(ChannelIdentity)
        .where(ChannelIdentity.customer_id == customer_id)
        .order_by(ChannelIdentity.id)
    )
    return [_record(row) for row in session.scalars(query)]


def unlink_identity(session: Session, *, kind: str, value: str) -> bool:
    """True if an identity was removed."""
    statement = delete(ChannelIdentity).where(
        ChannelIdentity.kind == check_choice(kind, IDENTITY_KINDS, "identity kind"),
        ChannelIdentity.value == value,
    )
    return session.execute(statement).rowcount > 0


def list_wechat_followers(session: Session) -> list[str]:
    """Every linked WeChat openid: the Official Account's followers as the CRM knows them (a
    follow links one, an unfollow unlinks it)."""
    query = (
        select(ChannelIdentity.value)
        .where(ChannelIdentity.kind == "wechat_openid")
        .order_by(ChannelIdentity.id)
    )
    return list(session.scalars(query))
