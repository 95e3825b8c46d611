"""Conversations and every customer, bot and agent turn in them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.clock import Clock, fixed, utcnow
from crm_store.customers import touch_customer
from crm_store.errors import InvalidInput, NotFound
from crm_store.models import CHANNELS, HANDLERS, SPEAKERS
from crm_store.models import Conversation as ConversationRow
from crm_store.models import Customer as CustomerRow
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


@dataclass(frozen=True)
class TurnToLog:
    """One turn for `log_turns`; `channel` None means "the conversation's channel"."""

    conversation_id: str
    speaker: str
    channel: str | None
    text: str | None
    intent: str | None
    confidence: float | None
    handled_by: str
    agent_id: int | None
    occurred_at: datetime
    event_key: str | None


def log_turns(session: Session, turns: Sequence[TurnToLog], *, default_channel: str) -> int:
    """Many turns at once, as `log_interaction` stores each, with a few statements instead of a
    handful per turn (the turn log writes every turn of every conversation); how many were new.

    Idempotent by event key: a turn already stored, or twice in `turns`, is stored once. A
    concurrent writer storing the same key between the check and the insert makes the insert
    fail with an IntegrityError; the caller then writes the turns one by one (`log_interaction`).
    A new conversation takes the channel of its first turn, or `default_channel`.
    """
    fresh = _turns_not_stored(session, turns)
    if not fresh:
        return 0
    conversations = _conversations_of(session, fresh, default_channel)
    session.execute(
        insert(InteractionRow),
        [_interaction_values(turn, *conversations[turn.conversation_id]) for turn in fresh],
    )
    _mark_latest(session, fresh, conversations)
    return len(fresh)


def _turns_not_stored(session: Session, turns: Sequence[TurnToLog]) -> list[TurnToLog]:
    for turn in turns:
        _check_turn(turn.speaker, turn.handled_by, turn.confidence, turn.agent_id)
        if turn.channel is not None:
            check_choice(turn.channel, CHANNELS, "channel")
        if turn.event_key is not None:
            check_text(turn.event_key, "event key", 96)
    seen = existing_event_keys(
        session, event_keys=[turn.event_key for turn in turns if turn.event_key is not None]
    )
    fresh = []
    for turn in turns:
        if turn.event_key is not None:
            if turn.event_key in seen:
                continue
            seen.add(turn.event_key)
        fresh.append(turn)
    return fresh


def _conversations_of(
    session: Session, turns: Sequence[TurnToLog], default_channel: str
) -> dict[str, tuple[int | None, str]]:
    """Each turn's conversation as (customer id, channel), created on first sight."""
    ids = sorted({turn.conversation_id for turn in turns})
    query = select(ConversationRow.id, ConversationRow.customer_id, ConversationRow.channel)
    found = {
        str(row.id): (row.customer_id, str(row.channel))
        for row in session.execute(query.where(ConversationRow.id.in_(ids)))
    }
    for turn in turns:
        if turn.conversation_id not in found:
            created = ensure_conversation(
                session,
                conversation_id=turn.conversation_id,
                channel=turn.channel or default_channel,
                clock=fixed(turn.occurred_at),
            )
            found[created.id] = (created.customer_id, created.channel)
    return found


def _interaction_values(
    turn: TurnToLog, customer_id: int | None, channel: str
) -> dict[str, object]:
    return {
        "conversation_id": turn.conversation_id,
        "customer_id": customer_id,
        "channel": turn.channel or channel,
        "speaker": turn.speaker,
        "text": turn.text,
        "intent": turn.intent,
        "confidence": turn.confidence,
        "handled_by": turn.handled_by,
        "agent_id": turn.agent_id,
        "occurred_at": turn.occurred_at,
        "event_key": turn.event_key,
    }


def _mark_latest(
    session: Session,
    turns: Sequence[TurnToLog],
    conversations: dict[str, tuple[int | None, str]],
) -> None:
    """Each conversation's last message time, and each customer who spoke marked active then."""
    latest: dict[str, datetime] = {}
    active: dict[int, datetime] = {}
    for turn in turns:
        latest[turn.conversation_id] = max(
            turn.occurred_at, latest.get(turn.conversation_id, turn.occurred_at)
        )
        customer_id = conversations[turn.conversation_id][0]
        if turn.speaker == "customer" and customer_id is not None:
            active[customer_id] = max(turn.occurred_at, active.get(customer_id, turn.occurred_at))
    session.execute(
        update(ConversationRow.__table__)
        .where(ConversationRow.__table__.c.id == bindparam("conversation"))
        .values(last_message_at=bindparam("at")),
        [{"conversation": key, "at": at} for key, at in latest.items()],
    )
    if active:
        session.execute(
            update(CustomerRow.__table__)
            .where(CustomerRow.__table__.c.id == bindparam("customer"))
            .values(last_active_at=bindparam("at")),
            [{"customer": key, "at": at} for key, at in active.items()],
        )


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
