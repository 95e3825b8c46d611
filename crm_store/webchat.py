"""The web chat's mailbox and who is connected to it.

Every message of a web chat session is stored before it is shown, so the widget can show the
history after a reload and a customer who was offline sees what the bot sent meanwhile. The
widget acknowledges what it has rendered (cumulatively: it renders in order), which sets
`delivered_at`. Presence is a lease: a Rasa process holding a customer's socket renews
`connected_until` while the socket is open, so a crashed process stops claiming the customer
within one lease.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.clock import Clock, utcnow
from crm_store.models import WEBCHAT_SENDERS
from crm_store.models import WebChatMessage as MessageRow
from crm_store.models import WebChatPresence as PresenceRow
from crm_store.validation import check_choice, check_text

HISTORY_LIMIT = 50
SESSION_ID_MAX = 64


@dataclass(frozen=True)
class WebChatMessage:
    id: int
    session_id: str
    sender: str
    payload: dict[str, Any]
    created_at: datetime
    delivered_at: datetime | None


def _record(row: MessageRow) -> WebChatMessage:
    return WebChatMessage(
        row.id, row.session_id, row.sender, dict(row.payload), row.created_at, row.delivered_at
    )


def _session_id(value: str) -> str:
    return check_text(value, "session_id", max_length=SESSION_ID_MAX)


def store_message(
    session: Session,
    *,
    session_id: str,
    sender: str,
    payload: dict[str, Any],
    clock: Clock = utcnow,
) -> WebChatMessage:
    """Keep one message of a session; the returned id is what the widget acknowledges."""
    row = MessageRow(
        session_id=_session_id(session_id),
        sender=check_choice(sender, WEBCHAT_SENDERS, "sender"),
        payload=payload,
        created_at=clock(),
    )
    session.add(row)
    session.flush()
    return _record(row)


def history(
    session: Session, *, session_id: str, limit: int = HISTORY_LIMIT
) -> list[WebChatMessage]:
    """The latest `limit` messages, oldest first, widened to every bot message not yet seen."""
    latest = (
        select(MessageRow.id)
        .where(MessageRow.session_id == session_id)
        .order_by(MessageRow.id.desc())
        .limit(limit)
        .subquery()
    )
    oldest_shown = select(func.min(latest.c.id)).scalar_subquery()
    query = (
        select(MessageRow)
        .where(
            MessageRow.session_id == session_id,
            or_(
                MessageRow.id >= oldest_shown,
                (MessageRow.sender == "bot") & MessageRow.delivered_at.is_(None),
            ),
        )
        .order_by(MessageRow.id)
    )
    return [_record(row) for row in session.scalars(query)]


def undelivered(session: Session, *, session_id: str) -> list[WebChatMessage]:
    """Bot messages of the session the widget has not acknowledged, oldest first."""
    query = (
        select(MessageRow)
        .where(
            MessageRow.session_id == session_id,
            MessageRow.sender == "bot",
            MessageRow.delivered_at.is_(None),
        )
        .order_by(MessageRow.id)
    )
    return [_record(row) for row in session.scalars(query)]


def acknowledge(session: Session, *, session_id: str, up_to_id: int, clock: Clock = utcnow) -> int:
    """Mark the session's bot messages up to `up_to_id` as seen; returns how many were new."""
    result = session.execute(
        update(MessageRow)
        .where(
            MessageRow.session_id == session_id,
            MessageRow.sender == "bot",
            MessageRow.id <= up_to_id,
            MessageRow.delivered_at.is_(None),
        )
        .values(delivered_at=clock())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def renew_presence(
    session: Session, *, session_ids: Iterable[str], lease: timedelta, clock: Clock = utcnow
) -> None:
    """These sessions have an open socket for at least `lease` more."""
    until = clock() + lease
    for session_id in sorted(set(session_ids)):
        updated = session.execute(
            update(PresenceRow)
            .where(PresenceRow.session_id == session_id)
            .values(connected_until=until)
            .execution_options(synchronize_session=False)
        )
        if not updated.rowcount:
            inserted = try_insert(
                session, PresenceRow(session_id=_session_id(session_id), connected_until=until)
            )
            if not inserted:  # another process inserted it first: renew theirs
                session.execute(
                    update(PresenceRow)
                    .where(PresenceRow.session_id == session_id)
                    .values(connected_until=until)
                    .execution_options(synchronize_session=False)
                )


def end_presence(session: Session, *, session_id: str) -> None:
    """The session's last socket in this process closed."""
    session.execute(delete(PresenceRow).where(PresenceRow.session_id == session_id))


def is_connected(session: Session, *, session_id: str, clock: Clock = utcnow) -> bool:
    """Whether a web chat socket of this session is open now (its lease has not run out)."""
    until = session.scalar(
        select(PresenceRow.connected_until).where(PresenceRow.session_id == session_id)
    )
    return until is not None and until > clock()
