"""Survey figures: trend, breakdowns, distributions, comments, themes, follow-ups.

The one place survey answers are counted: the dashboard's figures and the survey report
(`crm_store.dashboard.survey_report`, `carebot report surveys`) both read them from here. Every
count is done by the database in one grouped statement per figure; Python only folds days into
weeks or months and turns counts into shares.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    outerjoin,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from crm_store.clock import BUSINESS_TZ, Clock, utcnow
from crm_store.dashboard.filters import (
    BOT,
    UNKNOWN,
    DashboardFilter,
    as_date,
    aware,
    local_day,
    narrow,
    share,
    utc_offset_minutes,
)
from crm_store.models import AuditEntry, Customer, CustomerMetrics, StaffUser, Ticket
from crm_store.models import Feedback as FeedbackRow
from crm_store.models import SurveyResponse as ResponseRow
from crm_store.surveys import RESPONDED, nps_score, status_counts
from crm_store.tickets import OPEN_STATUSES
from crm_store.validation import check_choice, check_positive, check_range

PERIODS = ("week", "month")
BREAKDOWNS = ("channel", "tier", "segment", "stage", "churn_band", "agent")
# (band, lowest churn risk, highest): "high" starts where analytics calls a customer churning.
CHURN_BANDS = (("low", 0, 29), ("medium", 30, 59), ("high", 60, 100))
DETRACTOR_CSAT, DETRACTOR_NPS = 2, 6  # CSAT 1-2 or NPS 0-6 calls for a follow-up
DETRACTOR_ALERT = "detractor_alert"  # the audit entry that links a survey to its ticket
DUE_SOON = timedelta(hours=4)
MAX_PAGE_SIZE = 200
SATISFIED_CSAT = 4  # CSAT 4-5 counts as satisfied
PROMOTER_NPS, PASSIVE_NPS = 9, 7  # 9-10 promoters, 7-8 passives, 0-6 detractors


@dataclass(frozen=True)
class SurveyFigures:
    """One group's figures; shares are fractions (0-1), NPS runs from -100 to 100."""

    group: str | None  # None: every survey in the range
    asked: int  # surveys asked in the range: answered + partial + declined + no_reply
    answered: int  # every question answered
    partial: int  # some answered, the survey not finished or left midway
    declined: int  # said no before answering anything
    no_reply: int  # asked, nothing answered
    response_rate: float | None  # (answered + partial) / asked
    csat_answers: int
    csat_average: float | None
    csat_satisfied_share: float | None  # CSAT 4-5 among the CSAT answers
    nps_answers: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None  # promoters % minus detractors %


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _count_columns() -> list[Any]:
    r = ResponseRow
    return [
        func.count().label("asked"),
        *status_counts(r.status),
        func.count(r.csat).label("csat_answers"),
        func.coalesce(func.sum(r.csat), 0).label("csat_sum"),
        _count_if(r.csat >= SATISFIED_CSAT).label("satisfied"),
        func.count(r.nps).label("nps_answers"),
        _count_if(r.nps >= PROMOTER_NPS).label("promoters"),
        _count_if(r.nps.between(PASSIVE_NPS, PROMOTER_NPS - 1)).label("passives"),
        _count_if(r.nps < PASSIVE_NPS).label("detractors"),
    ]


COUNTS = (
    "asked",
    "answered",
    "partial",
    "declined",
    "no_reply",
    "csat_answers",
    "csat_sum",
    "satisfied",
    "nps_answers",
    "promoters",
    "passives",
    "detractors",
)


def _figures(group: str | None, counts: dict[str, int]) -> SurveyFigures:
    c = counts
    average = None if c["csat_answers"] == 0 else round(c["csat_sum"] / c["csat_answers"], 2)
    return SurveyFigures(
        group=group,
        asked=c["asked"],
        answered=c["answered"],
        partial=c["partial"],
        declined=c["declined"],
        no_reply=c["no_reply"],
        response_rate=share(c["answered"] + c["partial"], c["asked"]),
        csat_answers=c["csat_answers"],
        csat_average=average,
        csat_satisfied_share=share(c["satisfied"], c["csat_answers"]),
        nps_answers=c["nps_answers"],
        promoters=c["promoters"],
        passives=c["passives"],
        detractors=c["detractors"],
        nps=nps_score(c["promoters"], c["detractors"], c["nps_answers"]),
    )


def _counts(row: Any) -> dict[str, int]:
    return {name: int(getattr(row, name)) for name in COUNTS}


def _where(f: DashboardFilter) -> list[Any]:
    r = ResponseRow
    return narrow(
        f, at=r.asked_at, customer_id=r.customer_id, channel=r.channel, agent_id=r.agent_id
    )


# Trend ---------------------------------------------------------------------------------------


def _period_start(day: date, period: str) -> date:
    return day - timedelta(days=day.weekday()) if period == "week" else day.replace(day=1)


def survey_trend(
    session: Session, f: DashboardFilter, *, period: str = "week", tz: str = BUSINESS_TZ.key
) -> list[SurveyFigures]:
    """CSAT, NPS and response rate per week (from Monday) or month; `group` is its first day.

    Days are cut in `tz` at its offset at the end of the range (exact for zones without daylight
    saving time, such as Asia/Shanghai); weeks and months with no survey are left out.
    """
    check_choice(period, PERIODS, "period")
    dialect = session.get_bind().dialect.name
    offset = utc_offset_minutes(tz, f.until or f.since)
    day = local_day(ResponseRow.asked_at, offset, dialect).label("day")
    query = select(day, *_count_columns()).where(*_where(f)).group_by(day)
    periods: dict[date, dict[str, int]] = {}
    for row in session.execute(query):
        total = periods.setdefault(
            _period_start(as_date(row.day), period), dict.fromkeys(COUNTS, 0)
        )
        for name, value in _counts(row).items():
            total[name] += value
    return [_figures(start.isoformat(), periods[start]) for start in sorted(periods)]


# Breakdowns ----------------------------------------------------------------------------------


def _band() -> Any:
    risk = CustomerMetrics.churn_risk
    whens = [(risk.between(low, high), literal(name)) for name, low, high in CHURN_BANDS]
    return case(*whens, else_=literal(UNKNOWN))


def _metrics_source() -> Any:
    return outerjoin(
        ResponseRow, CustomerMetrics, CustomerMetrics.customer_id == ResponseRow.customer_id
    )


def _grouping(by: str) -> tuple[Any, Any]:
    """The rows to count (surveys outer-joined to what names the group) and the group key."""
    r = ResponseRow
    if by == "channel":
        return r, r.channel
    if by == "tier":
        source = outerjoin(r, Customer, Customer.id == r.customer_id)
        return source, func.coalesce(Customer.tier, UNKNOWN)
    if by == "agent":
        source = outerjoin(r, StaffUser, StaffUser.id == r.agent_id)
        return source, func.coalesce(StaffUser.username, BOT)
    key = {
        "segment": func.coalesce(CustomerMetrics.rfm_segment, UNKNOWN),
        "stage": func.coalesce(CustomerMetrics.lifecycle_stage, UNKNOWN),
        "churn_band": _band(),
    }[by]
    return _metrics_source(), key


def survey_breakdown_query(f: DashboardFilter, *, by: str | None = None) -> Select:
    """The statement behind survey_breakdown (exposed for EXPLAIN)."""
    if by is None:
        return select(*_count_columns()).where(*_where(f))
    source, key = _grouping(check_choice(by, BREAKDOWNS, "survey breakdown"))
    group = key.label("group_key")
    return select(group, *_count_columns()).select_from(source).where(*_where(f)).group_by(group)


def survey_breakdown(
    session: Session, f: DashboardFilter, *, by: str | None = None
) -> list[SurveyFigures]:
    """The survey figures in the filter: one entry (group None; zero counts and None averages
    when nothing matches) or one per group that has surveys, the largest first."""
    rows = session.execute(survey_breakdown_query(f, by=by)).all()
    if by is None:
        return [_figures(None, _counts(rows[0]))]
    figures = [_figures(str(row.group_key), _counts(row)) for row in rows]
    return sorted(figures, key=lambda item: (-item.asked, item.group or ""))


# Distributions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreCount:
    question: str  # "csat" (1-5) or "nps" (0-10)
    score: int
    answers: int
    share: float | None  # of the question's answers


def score_distribution(session: Session, f: DashboardFilter) -> list[ScoreCount]:
    """How many answers gave each CSAT and each NPS score (scores nobody gave count 0).

    One grouped read of the (CSAT, NPS) pairs, at most 66 of them, folded per question.
    """
    r = ResponseRow
    query = (
        select(r.csat, r.nps, func.count())
        .where(r.csat.is_not(None) | r.nps.is_not(None), *_where(f))
        .group_by(r.csat, r.nps)
    )
    csat: dict[int, int] = {}
    nps: dict[int, int] = {}
    for csat_score, nps_score_, n in session.execute(query):
        if csat_score is not None:
            csat[int(csat_score)] = csat.get(int(csat_score), 0) + int(n)
        if nps_score_ is not None:
            nps[int(nps_score_)] = nps.get(int(nps_score_), 0) + int(n)
    return _scores("csat", csat, range(1, 6)) + _scores("nps", nps, range(0, 11))


def _scores(question: str, counts: dict[int, int], scores: range) -> list[ScoreCount]:
    total = sum(counts.values())
    return [
        ScoreCount(question, s, counts.get(s, 0), share(counts.get(s, 0), total)) for s in scores
    ]


# Verbatim comments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Comment:
    source: str  # "survey" (a survey's comment) or "feedback" (said outside a survey)
    id: int
    at: datetime
    channel: str
    customer_id: int | None
    csat: int | None
    nps: int | None
    text: str
    themes: tuple[str, ...]
    polarity: str


@dataclass(frozen=True)
class CommentPage:
    total: int  # comments matching, over all pages
    page: int
    page_size: int
    rows: list[Comment]


def _score_polarity() -> Any:
    """A survey comment's polarity: as the feedback analysis read the comment (migration 0013),
    else, for comments stored before that, from the scores."""
    r = ResponseRow
    negative = (r.csat <= DETRACTOR_CSAT) | (r.nps <= DETRACTOR_NPS)
    positive = (r.csat >= SATISFIED_CSAT) | (r.nps >= PROMOTER_NPS)
    return case(
        (r.polarity.is_not(None), r.polarity),
        (negative, literal("negative")),
        (positive, literal("positive")),
        else_=literal("neutral"),
    )


def _survey_comments(f: DashboardFilter) -> Any:
    r = ResponseRow
    return select(
        literal("survey").label("source"),
        r.id.label("id"),
        r.asked_at.label("at"),
        r.channel.label("channel"),
        r.customer_id.label("customer_id"),
        r.csat.label("csat"),
        r.nps.label("nps"),
        r.comment.label("text"),
        r.themes.label("themes"),
        _score_polarity().label("polarity"),
    ).where(r.comment.is_not(None), *_where(f))


def _feedback_comments(f: DashboardFilter) -> Any:
    b = FeedbackRow
    where = narrow(
        f, at=b.created_at, customer_id=b.customer_id, channel=b.channel, agent_id=null()
    )
    return select(
        literal("feedback").label("source"),
        b.id.label("id"),
        b.created_at.label("at"),
        b.channel.label("channel"),
        b.customer_id.label("customer_id"),
        cast(null(), Integer).label("csat"),
        cast(null(), Integer).label("nps"),
        b.text.label("text"),
        b.themes.label("themes"),
        b.polarity.label("polarity"),
    ).where(*where)


def _theme_elements(themes: Any, dialect: str) -> tuple[Any, Any]:
    """Each theme of a JSON array as a row, and the condition that `themes` is an array."""
    if dialect == "postgresql":
        elements = func.json_array_elements_text(themes).table_valued("value")
        return elements.render_derived(name="theme"), func.json_typeof(themes) == "array"
    return func.json_each(themes).table_valued("value"), func.json_type(themes) == "array"


def _comment_conditions(
    comments: Any, dialect: str, text: str | None, theme: str | None, polarity: str | None
) -> list[Any]:
    where = []
    if text:
        where.append(func.lower(comments.c.text).contains(text.strip().lower(), autoescape=True))
    if polarity:
        where.append(comments.c.polarity == polarity)
    if theme:
        element, is_array = _theme_elements(comments.c.themes, dialect)
        mentions = select(literal(1)).select_from(element).where(element.c.value == theme)
        where.append(and_(is_array, mentions.exists()))
    return where


def survey_comments(
    session: Session,
    f: DashboardFilter,
    *,
    text: str | None = None,
    theme: str | None = None,
    polarity: str | None = None,
    page: int = 1,
    page_size: int = 20,
) -> CommentPage:
    """Verbatim comments (survey comments and free feedback), newest first, one page of them.

    `text` matches anywhere in the comment (case-insensitive), `theme` one of its themes.
    """
    check_positive(page, "page")
    check_range(page_size, 1, MAX_PAGE_SIZE, "page size")
    dialect = session.get_bind().dialect.name
    comments = union_all(_survey_comments(f), _feedback_comments(f)).subquery("comments")
    where = _comment_conditions(comments, dialect, text, theme, polarity)
    query = (
        select(comments, func.count().over().label("total"))  # one scan for the page and total
        .where(*where)
        .order_by(comments.c.at.desc(), comments.c.source, comments.c.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    found = session.execute(query).all()
    if found:
        total = int(found[0].total)
    else:  # past the last page: the window saw no row, count apart
        total = int(session.scalar(select(func.count()).select_from(comments).where(*where)) or 0)
    return CommentPage(total, page, page_size, [_comment(row) for row in found])


def _comment(row: Any) -> Comment:
    themes = row.themes if isinstance(row.themes, list) else []
    return Comment(
        source=row.source,
        id=int(row.id),
        at=aware(row.at),
        channel=row.channel,
        customer_id=row.customer_id,
        csat=row.csat,
        nps=row.nps,
        text=row.text,
        themes=tuple(str(t) for t in themes),
        polarity=row.polarity,
    )


# Themes --------------------------------------------------------------------------------------


def _bytewise(column: Any, dialect: str) -> Any:
    """Ties in code point order on both databases (SQLite compares bytes already)."""
    return column.collate("C") if dialect == "postgresql" else column


def top_themes(session: Session, f: DashboardFilter, *, limit: int = 10) -> list[tuple[str, int]]:
    """The most mentioned themes of the comments of the surveys in the filter (answered or
    partial) with their mentions, ties in code point order."""
    dialect = session.get_bind().dialect.name
    theme, is_array = _theme_elements(ResponseRow.themes, dialect)
    mentions = func.count().label("mentions")
    query = (
        select(theme.c.value, mentions)
        .select_from(ResponseRow)
        .join(theme, true())
        .where(ResponseRow.status.in_(RESPONDED), is_array, *_where(f))
        .group_by(theme.c.value)
        .order_by(mentions.desc(), _bytewise(theme.c.value, dialect))
        .limit(check_positive(limit, "limit"))
    )
    return [(str(value), int(count)) for value, count in session.execute(query)]


@dataclass(frozen=True)
class ThemeMovement:
    theme: str
    mentions: int  # in the comments of the range's surveys (answered or partial)
    previous_mentions: int  # in the range of equal length just before
    change: int
    change_share: float | None  # change / previous_mentions


def _theme_counts(session: Session, f: DashboardFilter) -> dict[str, tuple[int, int]]:
    """Mentions per theme in the range and in the range before it, in one scan of both."""
    dialect = session.get_bind().dialect.name
    theme, is_array = _theme_elements(ResponseRow.themes, dialect)
    since = f.since
    before = replace(f, since=f.previous().since)
    in_range = ResponseRow.asked_at >= since
    query = (
        select(theme.c.value, _count_if(in_range), _count_if(~in_range))
        .select_from(ResponseRow)
        .join(theme, true())
        .where(ResponseRow.status.in_(RESPONDED), is_array, *_where(before))
        .group_by(theme.c.value)
    )
    return {str(name): (int(now), int(then)) for name, now, then in session.execute(query)}


def theme_movement(session: Session, f: DashboardFilter, *, limit: int = 10) -> list[ThemeMovement]:
    """The most mentioned themes of the range (ties in code point order) with their mentions
    in the range of equal length before it."""
    check_positive(limit, "limit")
    counts = _theme_counts(session, f)
    ranked = sorted((item for item in counts.items() if item[1][0] > 0), key=_by_mentions)
    return [
        ThemeMovement(theme, now, then, now - then, share(now - then, then))
        for theme, (now, then) in ranked[:limit]
    ]


def _by_mentions(item: tuple[str, tuple[int, int]]) -> tuple[int, str]:
    return -item[1][0], item[0]


# Detractor follow-ups ------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowUp:
    ticket_id: int
    response_id: int
    customer_id: int
    csat: int | None
    nps: int | None
    comment: str | None
    status: str
    owner: str | None
    created_at: datetime
    sla_due_at: datetime
    sla_state: str  # overdue, due_soon (within 4 hours), on_time


def sla_state(due: datetime, now: datetime) -> str:
    if now >= due:
        return "overdue"
    return "due_soon" if due - now <= DUE_SOON else "on_time"


def detractor_follow_ups(
    session: Session, f: DashboardFilter, *, limit: int = 100, clock: Clock = utcnow
) -> list[FollowUp]:
    """Open follow-up tickets of unhappy survey answers, the most urgent first.

    The range and the other dimensions narrow the surveys; a ticket is open until resolved.
    """
    r, a, t = ResponseRow, AuditEntry, Ticket
    linked = and_(a.action == DETRACTOR_ALERT, a.entity == "survey_response")
    query = (
        select(t, r.id.label("response_id"), r.csat, r.nps, r.comment, StaffUser.username)
        .select_from(a)
        .join(r, r.id == cast(a.entity_id, Integer))
        .join(t, t.id == a.changes["ticket_id"].as_integer())
        .outerjoin(StaffUser, StaffUser.id == t.owner_id)
        .where(linked, t.status.in_(OPEN_STATUSES), *_where(f))
        .order_by(t.sla_due_at, t.id)
        .limit(check_positive(limit, "limit"))
    )
    now = clock()
    return [_follow_up(row, now) for row in session.execute(query)]


def _follow_up(row: Any, now: datetime) -> FollowUp:
    ticket = row.Ticket
    return FollowUp(
        ticket_id=ticket.id,
        response_id=int(row.response_id),
        customer_id=ticket.customer_id,
        csat=row.csat,
        nps=row.nps,
        comment=row.comment,
        status=ticket.status,
        owner=row.username,
        created_at=ticket.created_at,
        sla_due_at=ticket.sla_due_at,
        sla_state=sla_state(ticket.sla_due_at, now),
    )
