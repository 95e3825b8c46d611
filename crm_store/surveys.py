"""Survey responses: one row per survey asked, each answer stored as it is given.

Status: `asked` (no answer: no reply), `partial` (some questions answered, the survey not
finished or left midway), `answered` (finished), `declined` (said no before any answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.models import CHANNELS, POLARITIES, SURVEY_TRIGGERS
from crm_store.models import SurveyResponse as ResponseRow
from crm_store.validation import check_choice, check_range, check_text

COMMENT_MAX = 2000
OPEN_STATUSES = ("asked", "partial")  # not finished: answers may still come
RESPONDED = ("partial", "answered")  # at least one question answered: counts as a response


@dataclass(frozen=True)
class SurveyResponse:
    id: int
    conversation_id: str
    trigger: str
    channel: str
    status: str
    customer_id: int | None
    agent_id: int | None
    csat: int | None
    nps: int | None
    comment: str | None
    themes: tuple[str, ...]
    asked_at: datetime
    answered_at: datetime | None
    polarity: str | None = None  # of the comment, as the feedback analysis read it


@dataclass(frozen=True)
class SurveySummary:
    asked: int  # every survey asked: answered + partial + declined + no_reply
    answered: int
    partial: int
    declined: int
    no_reply: int
    csat_average: float | None
    nps: float | None  # promoters % minus detractors %, from -100 to 100


def nps_score(promoters: int, detractors: int, answers: int) -> float | None:
    return None if answers == 0 else round(100.0 * (promoters - detractors) / answers, 1)


def _record(row: ResponseRow) -> SurveyResponse:
    return SurveyResponse(
        row.id,
        row.conversation_id,
        row.trigger,
        row.channel,
        row.status,
        row.customer_id,
        row.agent_id,
        row.csat,
        row.nps,
        row.comment,
        tuple(row.themes or ()),
        row.asked_at,
        row.answered_at,
        row.polarity,
    )


def _find_row(session: Session, conversation_id: str, trigger: str) -> ResponseRow | None:
    query = select(ResponseRow).where(
        ResponseRow.conversation_id == conversation_id, ResponseRow.trigger == trigger
    )
    return session.scalars(query).first()


def find_survey_response(
    session: Session, *, conversation_id: str, trigger: str
) -> SurveyResponse | None:
    row = _find_row(session, conversation_id, trigger)
    return _record(row) if row else None


def ask_survey(
    session: Session,
    *,
    conversation_id: str,
    trigger: str,
    channel: str,
    customer_id: int | None = None,
    agent_id: int | None = None,
    clock: Clock = utcnow,
) -> SurveyResponse:
    """Record that the survey was asked; asking again for the same conversation and trigger
    returns the existing row."""
    row = _asked_row(session, conversation_id, trigger, channel, customer_id, agent_id, clock)
    return _record(row)


def _asked_row(
    session: Session,
    conversation_id: str,
    trigger: str,
    channel: str,
    customer_id: int | None,
    agent_id: int | None,
    clock: Clock,
) -> ResponseRow:
    check_choice(trigger, SURVEY_TRIGGERS, "survey trigger")
    check_choice(channel, CHANNELS, "channel")
    conversation_id = check_text(conversation_id, "conversation id", 64)
    # Insert first, then read the winner: on SQLite a transaction that read before writing
    # cannot wait for a concurrent writer (it gets "database is locked"); inserting first takes
    # the write lock at once, and the unique (conversation, trigger) decides who was first.
    row = ResponseRow(
        conversation_id=conversation_id,
        trigger=trigger,
        channel=channel,
        status="asked",
        customer_id=customer_id,
        agent_id=agent_id,
        themes=[],
        asked_at=clock(),
    )
    if try_insert(session, row):
        return row
    winner = _find_row(session, conversation_id, trigger)  # asked before, or a concurrent ask
    if winner is None:
        raise Conflict(f"survey {conversation_id}/{trigger} could not be recorded")
    return winner


def record_survey_answer(
    session: Session,
    *,
    conversation_id: str,
    trigger: str,
    channel: str,
    csat: int | None = None,
    nps: int | None = None,
    comment: str | None = None,
    themes: Sequence[str] = (),
    polarity: str | None = None,
    customer_id: int | None = None,
    agent_id: int | None = None,
    clock: Clock = utcnow,
) -> SurveyResponse:
    """Store the answers given so far, each as soon as the customer gives it: an asked survey
    becomes `partial`, keeping them even if the survey is never finished. Only the answers
    passed are written (None leaves a stored answer alone); `themes` and `polarity` go with the
    comment. While the survey is unfinished a new answer replaces the stored one (a
    correction); the same answer again changes nothing. A finished survey (answered or
    declined) is returned unchanged."""
    if csat is None and nps is None and not (comment and comment.strip()):
        raise InvalidInput("a survey answer needs a CSAT or an NPS score or a comment")
    checked = _checked_answers(csat, nps, comment, themes)
    if polarity is not None:
        check_choice(polarity, POLARITIES, "polarity")
    row = _asked_row(session, conversation_id, trigger, channel, customer_id, agent_id, clock)
    if row.status in OPEN_STATUSES:
        _store(row, checked, polarity, clock)
        session.flush()
    return _record(row)


def _store(
    row: ResponseRow,
    checked: tuple[int | None, int | None, str | None, list[str]],
    polarity: str | None,
    clock: Clock,
) -> None:
    csat, nps, comment, themes = checked
    before = (row.csat, row.nps, row.comment, list(row.themes or ()), row.polarity)
    if csat is not None:
        row.csat = csat
    if nps is not None:
        row.nps = nps
    if comment is not None:
        row.comment, row.themes, row.polarity = comment, themes, polarity
    after = (row.csat, row.nps, row.comment, list(row.themes or ()), row.polarity)
    if row.status == "asked" or after != before:
        row.status, row.answered_at = "partial", clock()


def complete_survey(
    session: Session,
    *,
    conversation_id: str,
    trigger: str,
    channel: str,
    customer_id: int | None = None,
    agent_id: int | None = None,
    clock: Clock = utcnow,
) -> SurveyResponse:
    """The survey reached its end: a partial survey becomes `answered` (its answers as they
    were stored). A survey with no answer stays `asked` (no reply), and a finished one is
    returned unchanged."""
    row = _asked_row(session, conversation_id, trigger, channel, customer_id, agent_id, clock)
    if row.status == "partial":
        row.status, row.answered_at = "answered", clock()
        session.flush()
    return _record(row)


def record_survey_response(
    session: Session,
    *,
    conversation_id: str,
    trigger: str,
    channel: str,
    csat: int | None = None,
    nps: int | None = None,
    comment: str | None = None,
    themes: Sequence[str] = (),
    polarity: str | None = None,
    customer_id: int | None = None,
    agent_id: int | None = None,
    clock: Clock = utcnow,
) -> SurveyResponse:
    """Store a whole survey at once (`record_survey_answer`, then `complete_survey`). A repeated
    submission (already answered or declined) returns the existing row unchanged."""
    if csat is None and nps is None:
        raise InvalidInput("a survey answer needs a CSAT or an NPS score")
    where: dict[str, Any] = {
        "conversation_id": conversation_id,
        "trigger": trigger,
        "channel": channel,
        "customer_id": customer_id,
        "agent_id": agent_id,
        "clock": clock,
    }
    record_survey_answer(
        session, csat=csat, nps=nps, comment=comment, themes=themes, polarity=polarity, **where
    )
    return complete_survey(session, **where)


def _checked_answers(
    csat: int | None, nps: int | None, comment: str | None, themes: Sequence[str]
) -> tuple[int | None, int | None, str | None, list[str]]:
    return (
        None if csat is None else check_range(csat, 1, 5, "CSAT"),
        None if nps is None else check_range(nps, 0, 10, "NPS"),
        check_text(comment, "comment", COMMENT_MAX) if comment and comment.strip() else None,
        [check_text(theme, "theme", 32) for theme in themes],
    )


def decline_survey(
    session: Session,
    *,
    conversation_id: str,
    trigger: str,
    channel: str,
    customer_id: int | None = None,
    agent_id: int | None = None,
    clock: Clock = utcnow,
) -> SurveyResponse:
    """The customer said no. A survey with no answer becomes `declined`; one with answers
    keeps them and stays `partial` (a CSAT given before "跳过" still counts); an answered
    survey stays answered."""
    row = _asked_row(session, conversation_id, trigger, channel, customer_id, agent_id, clock)
    if row.status == "asked":
        row.status, row.answered_at = "declined", clock()
        session.flush()
    return _record(row)


def get_survey_response(session: Session, *, response_id: int) -> SurveyResponse:
    row = session.get(ResponseRow, response_id)
    if row is None:
        raise NotFound(f"no survey response {response_id}")
    return _record(row)


def list_survey_responses(
    session: Session,
    *,
    since: datetime | None = None,
    customer_id: int | None = None,
    agent_id: int | None = None,
    limit: int = 100,
) -> list[SurveyResponse]:
    query = select(ResponseRow).order_by(ResponseRow.asked_at.desc(), ResponseRow.id.desc())
    if since is not None:
        query = query.where(ResponseRow.asked_at >= since)
    if customer_id is not None:
        query = query.where(ResponseRow.customer_id == customer_id)
    if agent_id is not None:
        query = query.where(ResponseRow.agent_id == agent_id)
    return [_record(row) for row in session.scalars(query.limit(limit))]


def _count_where(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def status_counts(status: Any = ResponseRow.status) -> list[Any]:
    """The four outcomes, as labelled count columns: answered, partial, declined and no_reply
    (still `asked`). They add up to the surveys asked. The reports and the dashboard count
    with these columns, so they cannot disagree."""
    return [
        _count_where(status == "answered").label("answered"),
        _count_where(status == "partial").label("partial"),
        _count_where(status == "declined").label("declined"),
        _count_where(status == "asked").label("no_reply"),
    ]


def survey_summary(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    trigger: str | None = None,
    agent_id: int | None = None,
) -> SurveySummary:
    """Counts, average CSAT and NPS over surveys asked in [since, until), in one query. The
    averages take every stored answer, of partial surveys too."""
    query = select(
        func.count(ResponseRow.id),
        *status_counts(),
        func.avg(ResponseRow.csat),
        _count_where(ResponseRow.nps >= 9),
        _count_where(ResponseRow.nps <= 6),
        func.count(ResponseRow.nps),
    ).where(ResponseRow.asked_at >= since, ResponseRow.asked_at < until)
    if trigger is not None:
        query = query.where(
            ResponseRow.trigger == check_choice(trigger, SURVEY_TRIGGERS, "trigger")
        )
    if agent_id is not None:
        query = query.where(ResponseRow.agent_id == agent_id)
    row = session.execute(query).one()
    asked, answered, partial, declined, no_reply, csat, promoters, detractors, nps_answers = row
    return SurveySummary(
        asked=int(asked),
        answered=int(answered),
        partial=int(partial),
        declined=int(declined),
        no_reply=int(no_reply),
        csat_average=None if csat is None else round(float(csat), 2),
        nps=nps_score(int(promoters), int(detractors), int(nps_answers)),
    )
