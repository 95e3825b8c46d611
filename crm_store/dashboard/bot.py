"""Bot performance: containment, handoffs, fallbacks, misunderstood messages, handling time.

A conversation is counted in the range it started in; it is contained when no handoff to a
human was ever requested in it. Turns are customer messages, counted when they were said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from crm_store.dashboard.filters import (
    BOT,
    DashboardFilter,
    aware,
    narrow,
    of_agent,
    seconds_between,
    share,
)
from crm_store.models import Conversation, Handoff, Interaction, StaffUser
from crm_store.validation import check_positive

FALLBACK_INTENT = "nlu_fallback"  # what the FallbackClassifier predicts when unsure


@dataclass(frozen=True)
class BotFigures:
    conversations: int
    contained: int  # no handoff requested
    handed_off: int
    containment_rate: float | None
    handoff_rate: float | None
    customer_turns: int
    fallback_turns: int
    fallback_rate: float | None
    handoffs_closed: int  # accepted by an agent and closed in the range
    average_handling_seconds: float | None  # accepted_at .. closed_at


@dataclass(frozen=True)
class HandoffReason:
    reason: str
    handoffs: int
    share: float | None


@dataclass(frozen=True)
class Misunderstood:
    text: str
    turns: int
    last_seen: datetime


@dataclass(frozen=True)
class AgentHandling:
    agent: str
    handoffs_closed: int
    average_handling_seconds: float | None


def _handed_off(f: DashboardFilter) -> Any:
    """The conversation had a handoff (to the filter's agent, if it names one); uncorrelated,
    so PostgreSQL hashes the handoffs once instead of probing them per conversation."""
    h = Handoff
    agent = [] if f.agent in (None, BOT) else of_agent(f, h.agent_id)
    return Conversation.id.in_(select(h.conversation_id).where(*agent))


def _conversation_counts(session: Session, f: DashboardFilter) -> tuple[int, int]:
    c = Conversation
    where = narrow(f, at=c.started_at, customer_id=c.customer_id, channel=c.channel)
    if f.agent == BOT:
        where.append(c.id.not_in(select(Handoff.conversation_id)))
    elif f.agent is not None:
        where.append(_handed_off(f))
    query = select(func.count(), func.count(c.id).filter(_handed_off(f))).where(*where)
    total, handed = session.execute(query).one()
    return int(total), int(handed)


def _turns(session: Session, f: DashboardFilter, *only: Any) -> int:
    """Customer turns in the filter; each count can read its own partial index (migration 0012)."""
    i = Interaction
    where = narrow(f, at=i.occurred_at, customer_id=i.customer_id, channel=i.channel)
    query = select(func.count()).where(i.speaker == "customer", *only, *where)
    return int(session.scalar(query) or 0)


def _turn_counts(session: Session, f: DashboardFilter) -> tuple[int, int]:
    return _turns(session, f), _turns(session, f, Interaction.intent == FALLBACK_INTENT)


def _closed_handoffs(f: DashboardFilter) -> list[Any]:
    h = Handoff
    where = narrow(f, at=h.closed_at, customer_id=h.customer_id, agent_id=h.agent_id)
    return [h.accepted_at.is_not(None), h.closed_at.is_not(None), *where, *_channel_of(f)]


def _channel_of(f: DashboardFilter) -> list[Any]:
    """Handoffs keep no channel: their conversation's."""
    if f.channel is None:
        return []
    on_channel = and_(Conversation.id == Handoff.conversation_id, Conversation.channel == f.channel)
    return [select(Conversation.id).where(on_channel).exists()]


def _handling(session: Session, f: DashboardFilter) -> tuple[int, float | None]:
    dialect = session.get_bind().dialect.name
    seconds = seconds_between(Handoff.accepted_at, Handoff.closed_at, dialect)
    closed, average = session.execute(
        select(func.count(), func.avg(seconds)).where(*_closed_handoffs(f))
    ).one()
    return int(closed), None if average is None else round(float(average), 1)


def bot_performance(session: Session, f: DashboardFilter) -> BotFigures:
    """The bot's figures for conversations started, turns said and handoffs closed in the range."""
    conversations, handed_off = _conversation_counts(session, f)
    turns, fallbacks = _turn_counts(session, f)
    closed, average = _handling(session, f)
    contained = conversations - handed_off
    return BotFigures(
        conversations=conversations,
        contained=contained,
        handed_off=handed_off,
        containment_rate=share(contained, conversations),
        handoff_rate=share(handed_off, conversations),
        customer_turns=turns,
        fallback_turns=fallbacks,
        fallback_rate=share(fallbacks, turns),
        handoffs_closed=closed,
        average_handling_seconds=average,
    )


def handoff_reasons(session: Session, f: DashboardFilter) -> list[HandoffReason]:
    """Why customers were handed to a human (handoffs requested in the range), most first."""
    h = Handoff
    where = narrow(f, at=h.requested_at, customer_id=h.customer_id, agent_id=h.agent_id)
    count = func.count().label("handoffs")
    query = (
        select(h.reason, count)
        .where(*where, *_channel_of(f))
        .group_by(h.reason)
        .order_by(count.desc(), h.reason)
    )
    rows = [(str(reason), int(n)) for reason, n in session.execute(query)]
    total = sum(n for _, n in rows)
    return [HandoffReason(reason, n, share(n, total)) for reason, n in rows]


def misunderstood_messages(
    session: Session, f: DashboardFilter, *, limit: int = 20
) -> list[Misunderstood]:
    """The customer messages the bot fell back on most often: candidates for training data."""
    i = Interaction
    where = narrow(f, at=i.occurred_at, customer_id=i.customer_id, channel=i.channel)
    turns = func.count().label("turns")
    dialect = session.get_bind().dialect.name
    text = i.text.collate("C") if dialect == "postgresql" else i.text
    query = (
        select(i.text, turns, func.max(i.occurred_at).label("last_seen"))
        .where(i.speaker == "customer", i.intent == FALLBACK_INTENT, i.text.is_not(None), *where)
        .group_by(i.text)
        .order_by(turns.desc(), text)
        .limit(check_positive(limit, "limit"))
    )
    return [_misunderstood(row) for row in session.execute(query)]


def _misunderstood(row: Any) -> Misunderstood:
    return Misunderstood(str(row.text), int(row.turns), aware(row.last_seen))


def agent_handling(session: Session, f: DashboardFilter) -> list[AgentHandling]:
    """Per agent: handoffs accepted and closed in the range and their average handling time."""
    dialect = session.get_bind().dialect.name
    seconds = seconds_between(Handoff.accepted_at, Handoff.closed_at, dialect)
    agent = func.coalesce(StaffUser.username, BOT).label("agent")
    query = (
        select(agent, func.count(), func.avg(seconds))
        .select_from(Handoff)
        .outerjoin(StaffUser, StaffUser.id == Handoff.agent_id)
        .where(*_closed_handoffs(f))
        .group_by(agent)
        .order_by(agent)
    )
    return [
        AgentHandling(str(name), int(n), None if avg is None else round(float(avg), 1))
        for name, n, avg in session.execute(query)
    ]
