"""Feedback customers give outside a survey, kept with the themes and polarity found in it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_store.clock import Clock, utcnow
from crm_store.models import CHANNELS, POLARITIES
from crm_store.models import Feedback as FeedbackRow
from crm_store.validation import check_choice, check_text


@dataclass(frozen=True)
class Feedback:
    id: int
    customer_id: int | None
    conversation_id: str
    channel: str
    text: str
    themes: tuple[str, ...]
    polarity: str
    created_at: datetime


def _record(row: FeedbackRow) -> Feedback:
    return Feedback(
        row.id,
        row.customer_id,
        row.conversation_id,
        row.channel,
        row.text,
        tuple(row.themes or ()),
        row.polarity,
        row.created_at,
    )


def record_feedback(
    session: Session,
    *,
    conversation_id: str,
    channel: str,
    text: str,
    themes: Sequence[str],
    polarity: str,
    customer_id: int | None = None,
    clock: Clock = utcnow,
) -> Feedback:
    row = FeedbackRow(
        customer_id=customer_id,
        conversation_id=check_text(conversation_id, "conversation id", 64),
        channel=check_choice(channel, CHANNELS, "channel"),
        text=check_text(text, "feedback", 4000),
        themes=[check_text(theme, "theme", 32) for theme in themes],
        polarity=check_choice(polarity, POLARITIES, "polarity"),
        created_at=clock(),
    )
    session.add(row)
    session.flush()
    return _record(row)


def list_feedback(
    session: Session, *, since: datetime | None = None, limit: int = 100
) -> list[Feedback]:
    query = select(FeedbackRow).order_by(FeedbackRow.created_at.desc(), FeedbackRow.id.desc())
    if since is not None:
        query = query.where(FeedbackRow.created_at >= since)
    return [_record(row) for row in session.scalars(query.limit(limit))]
