"""Conversations and every customer, bot and agent turn in them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.clock import Clock, utcnow
from crm_store.customers import touch_customer
from crm_store.errors import InvalidInput, NotFound
from crm_store.models import CHANNELS, HANDLERS, SPEAKERS
from crm_store.models import Conversation as ConversationRow
from crm_store.models import Interaction as InteractionRow
from crm_store.validation import check_choice, check_text


@dataclass(frozen=True)
class Conversation:
    id: str
    customer_id: int | None
    channel: str
    started_at: datetime
    last_message_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class Interaction:
    id: int
    conversation_id: str
    customer_id: int | None
    channel: str
    speaker: str
    text: str | None
    intent: str | None
    confidence: float | None
    handled_by: str
    agent_id: int | None
    occurred_at: datetime


def _conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        row.id, row.customer_id, row.channel, row.started_at, row.last_message_at, row.ended_at
    )


def _interaction(row: InteractionRow) -> Interaction:
    return Interaction(
        row.id,
        row.conversation_id,
        row.customer_id,
        row.channel,
        row.speaker,
        row.text,
        row.intent,
        row.confidence,
        row.handled_by,
        row.agent_id,
        row.occurred_at,
    )


CONVERSATION_ID_LENGTH = 64  # conversations.id
_HASHED_PREFIX = "sha256:"


def conversation_id_for(sender_id: str) -> str:
    """The conversation id for a Rasa sender id: itself, or a stable hash when it is too long.

    Channels accept sender ids up to 255 characters; ours hold 64. A longer id becomes
    "sha256:" and the first 57 hex digits of its SHA-256, the same in every process.
    """
    if len(sender_id) <= CONVERSATION_ID_LENGTH:
        return sender_id
    digest = hashlib.sha256(sender_id.encode("utf-8")).hexdigest()
    return _HASHED_PREFIX + digest[: CONVERSATION_ID_LENGTH - len(_HASHED_PREFIX)]


def ensure_conversation(
    session: Session,
    *,
    conversation_id: str,
    channel: str,
    customer_id: int | None = None,
    clock: Clock = utcnow,
) -> Conversation:
    """The conversation, created on first sight; a newly known customer is attached to it."""
    check_choice(channel, CHANNELS, "channel")
    conversation_id = check_text(conversation_id, "conversation id", 64)
    row = session.get(ConversationRow, conversation_id)
    if row is None:
        now = clock()
        row = ConversationRow(
            id=conversation_id,
            customer_id=customer_id,
            channel=channel,
            started_at=now,
            last_message_at=now,
        )
        if not try_insert(session, row):  # a concurrent turn created it first
            row = session.get(ConversationRow, conversation_id)
    if customer_id is not None and row.customer_id is None:
        row.customer_id = customer_id
        session.flush()
    return _conversation(row)


def get_conversation(session: Session, *, conversation_id: str) -> Conversation:
    row = session.get(ConversationRow, conversation_id)
    if row is None:
        raise NotFound(f"no conversation {conversation_id}")
    return _conversation(row)


def end_conversation(
    session: Session, *, conversation_id: str, clock: Clock = utcnow
) -> Conversation:
    row = session.get(ConversationRow, conversation_id)
    if row is None:
        raise NotFound(f"no conversation {conversation_id}")
    row.ended_at = row.ended_at or clock()
    session.flush()
    return _conversation(row)


def log_interaction(
    session: Session,
    *,
    conversation_id: str,
    channel: str,
    speaker: str,
    text: str | None = None,
    intent: str | None = None,
    confidence: float | None = None,
    handled_by: str = "bot",
    agent_id: int | None = None,
    customer_id: int | None = None,
    event_key: str | None = None,
    clock: Clock = utcnow,
) -> Interaction:
    """One turn. A customer turn also marks the customer active.

    With an `event_key` the call is idempotent: a turn already stored under that key is returned
    unchanged, so a writer that retries after an unacknowledged commit does not duplicate it.
    """
    _check_turn(speaker, handled_by, confidence, agent_id)
    if event_key is not None:
        event_key = check_text(event_key, "event key", 96)
        existing = _row_by_event_key(session, event_key)
        if existing is not None:
            return _interaction(existing)
    conversation = ensure_conversation(
        session,
        conversation_id=conversation_id,
        channel=channel,
        customer_id=customer_id,
        clock=clock,
    )
    now = clock()
    row = InteractionRow(
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        channel=channel,
        speaker=speaker,
        text=text,
        intent=intent,
        confidence=confidence,
        handled_by=handled_by,
        agent_id=agent_id,
        occurred_at=now,
        event_key=event_key,
    )
    stored = _insert_once(session, row)
    if stored is not row:
        return _interaction(stored)
    session.get(ConversationRow, conversation.id).last_message_at = now
    if speaker == "customer" and conversation.customer_id is not None:
        touch_customer(session, customer_id=conversation.customer_id, clock=clock)
    session.flush()
    return _interaction(row)


def _insert_once(session: Session, row: InteractionRow) -> InteractionRow:
    """The new row, or the one a concurrent writer stored first under the same event key."""
    if row.event_key is None:
        session.add(row)
        session.flush()
        return row
    if try_insert(session, row):
        return row
    existing = _row_by_event_key(session, row.event_key)
    if existing is None:  # refused by another constraint, e.g. an unknown agent
        raise InvalidInput(f"interaction {row.event_key!r} refused by the database")
    return existing


def _row_by_event_key(session: Session, event_key: str) -> InteractionRow | None:
    query = select(InteractionRow).where(InteractionRow.event_key == event_key)
    return session.scalars(query).one_or_none()


def existing_event_keys(session: Session, *, event_keys: Iterable[str]) -> set[str]:
    """Which of `event_keys` are already stored (a reader that writes many turns again skips
    them with one query per 500 keys instead of one per turn)."""
    keys = sorted(set(event_keys))
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        query = select(InteractionRow.event_key).where(
            InteractionRow.event_key.in_(keys[start : start + 500])
        )
        found.update(str(key) for key in session.scalars(query))
    return found


def _check_turn(
    speaker: str, handled_by: str, confidence: float | None, agent_id: int | None
) -> None:
    check_choice(speaker, SPEAKERS, "speaker")
    check_choice(handled_by, HANDLERS, "handled_by")
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        raise InvalidInput(f"confidence must be within [0, 1], got {confidence}")
    if speaker == "agent" and agent_id is None:
        raise InvalidInput("an agent turn needs the agent's id")


def list_interactions(session: Session, *, conversation_id: str) -> list[Interaction]:
    query = (
        select(InteractionRow)
        .where(InteractionRow.conversation_id == conversation_id)
        .order_by(InteractionRow.occurred_at, InteractionRow.id)
    )
    return [_interaction(row) for row in session.scalars(query)]


def list_customer_interactions(
    session: Session, *, customer_id: int, limit: int = 50
) -> list[Interaction]:
    """Newest first, across conversations."""
    query = (
        select(InteractionRow)
        .where(InteractionRow.customer_id == customer_id)
        .order_by(InteractionRow.occurred_at.desc(), InteractionRow.id.desc())
        .limit(limit)
    )
    return [_interaction(row) for row in session.scalars(query)]


def list_conversations(
    session: Session, *, customer_id: int | None = None, limit: int = 50
) -> list[Conversation]:
    query = select(ConversationRow).order_by(ConversationRow.last_message_at.desc()).limit(limit)
    if customer_id is not None:
        query = query.where(ConversationRow.customer_id == customer_id)
    return [_conversation(row) for row in session.scalars(query)]
