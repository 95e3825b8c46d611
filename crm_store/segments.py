"""Tags on customers, and named segments whose members analytics materialises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, NotFound
from crm_store.models import Customer as CustomerRow
from crm_store.models import CustomerTag, SegmentMember, Tag
from crm_store.models import Segment as SegmentRow
from crm_store.validation import check_text


@dataclass(frozen=True)
class Segment:
    id: int
    key: str
    name: str
    description: str | None
    refreshed_at: datetime | None


def _tag_id(session: Session, name: str) -> int:
    name = check_text(name, "tag", 32)
    tag_id = session.scalar(select(Tag.id).where(Tag.name == name))
    if tag_id is None:
        tag = Tag(name=name)
        if not try_insert(session, tag):  # created concurrently
            return int(session.scalar(select(Tag.id).where(Tag.name == name)))
        tag_id = tag.id
    return int(tag_id)


def tag_customer(session: Session, *, customer_id: int, tag: str, clock: Clock = utcnow) -> None:
    """Idempotent."""
    if session.get(CustomerRow, customer_id) is None:
        raise NotFound(f"no customer {customer_id}")
    tag_id = _tag_id(session, tag)
    if session.get(CustomerTag, (customer_id, tag_id)) is None:
        try_insert(session, CustomerTag(customer_id=customer_id, tag_id=tag_id, added_at=clock()))


def untag_customer(session: Session, *, customer_id: int, tag: str) -> None:
    tag_id = session.scalar(select(Tag.id).where(Tag.name == tag))
    if tag_id is not None:
        session.execute(
            delete(CustomerTag).where(
                CustomerTag.customer_id == customer_id, CustomerTag.tag_id == tag_id
            )
        )


def list_tags(session: Session, *, customer_id: int) -> list[str]:
    query = (
        select(Tag.name)
        .join(CustomerTag, CustomerTag.tag_id == Tag.id)
        .where(CustomerTag.customer_id == customer_id)
        .order_by(Tag.name)
    )
    return list(session.scalars(query))


def list_tagged_customers(session: Session, *, tag: str, limit: int = 1000) -> list[int]:
    query = (
        select(CustomerTag.customer_id)
        .join(Tag, Tag.id == CustomerTag.tag_id)
        .where(Tag.name == tag)
        .order_by(CustomerTag.customer_id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _segment(row: SegmentRow) -> Segment:
    return Segment(row.id, row.key, row.name, row.description, row.refreshed_at)


def create_segment(
    session: Session, *, key: str, name: str, description: str | None = None, clock: Clock = utcnow
) -> Segment:
    row = SegmentRow(
        key=check_text(key, "key", 48),
        name=check_text(name, "name", 64),
        description=description,
        created_at=clock(),
    )
    if not try_insert(session, row):
        raise Conflict(f"a segment with key {key} exists")
    return _segment(row)


def get_segment(session: Session, *, key: str) -> Segment:
    row = session.scalars(select(SegmentRow).where(SegmentRow.key == key)).first()
    if row is None:
        raise NotFound(f"no segment {key}")
    return _segment(row)


def list_segment_members(
    session: Session, *, key: str, limit: int = 1000, offset: int = 0
) -> list[int]:
    segment = get_segment(session, key=key)
    query = (
        select(SegmentMember.customer_id)
        .where(SegmentMember.segment_id == segment.id)
        .order_by(SegmentMember.customer_id)
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(query))


def segment_size(session: Session, *, key: str) -> int:
    segment = get_segment(session, key=key)
    return int(
        session.scalar(
            select(func.count())
            .select_from(SegmentMember)
            .where(SegmentMember.segment_id == segment.id)
        )
    )
