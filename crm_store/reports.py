"""Survey reports for the CLI (`carebot report surveys`) and the dashboard.

survey_report() answers CSAT, NPS and the response rate over surveys asked in [since, until),
for everything or per channel, tier, RFM segment or agent, in one grouped query; top_themes()
counts the themes of the answers in one more. The database does the counting: there is no
Python loop over responses, so a million rows cost one scan (or one index range) each.
render_survey_report() turns the figures into an aligned table, CSV for Excel, or JSON.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, outerjoin, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from crm_store.clock import BUSINESS_TZ, as_utc
from crm_store.customers import check_timezone
from crm_store.errors import InvalidInput
from crm_store.masking import spreadsheet_safe
from crm_store.models import Customer, CustomerMetrics, StaffUser
from crm_store.models import SurveyResponse as ResponseRow
from crm_store.surveys import RESPONDED, nps_score, status_counts
from crm_store.validation import check_choice, check_positive

GROUPINGS = ("channel", "tier", "segment", "agent")
FORMATS = ("table", "csv", "json")
UNKNOWN = "unknown"  # an anonymous survey's tier or segment, or a customer never analysed
BOT = "bot"  # the agent of a survey no human agent took part in
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


@dataclass(frozen=True)
class SurveyReport:
    since: datetime
    until: datetime
    by: str | None
    groups: list[SurveyFigures]
    top_themes: list[tuple[str, int]]


def day_window(first: date, last: date, *, tz: str = BUSINESS_TZ.key) -> tuple[datetime, datetime]:
    """[first 00:00, the day after last 00:00) in `tz`, in UTC: a report's days are whole local
    days, and its last day is included."""
    if last < first:
        raise InvalidInput(f"the report ends ({last}) before it starts ({first})")
    zone = ZoneInfo(check_timezone(tz))
    since = datetime.combine(first, time(), zone)
    until = datetime.combine(last + timedelta(days=1), time(), zone)
    return since.astimezone(timezone.utc), until.astimezone(timezone.utc)


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _in_window(since: datetime, until: datetime) -> Any:
    """asked_at in [since, until); naive datetimes are UTC, as everywhere in crm_store."""
    if as_utc(until) < as_utc(since):
        raise InvalidInput(f"the report ends ({until}) before it starts ({since})")
    return (ResponseRow.asked_at >= since) & (ResponseRow.asked_at < until)


def _figure_columns() -> list[Any]:
    r = ResponseRow
    return [
        func.count().label("asked"),
        *status_counts(r.status),
        func.count(r.csat).label("csat_answers"),
        func.avg(r.csat).label("csat_average"),
        _count_if(r.csat >= SATISFIED_CSAT).label("satisfied"),
        func.count(r.nps).label("nps_answers"),
        _count_if(r.nps >= PROMOTER_NPS).label("promoters"),
        _count_if(r.nps.between(PASSIVE_NPS, PROMOTER_NPS - 1)).label("passives"),
        _count_if(r.nps < PASSIVE_NPS).label("detractors"),
    ]


def _by_channel() -> tuple[Any, Any]:
    return ResponseRow, ResponseRow.channel


def _by_tier() -> tuple[Any, Any]:
    """The customer's tier now, not when the survey was asked (tiers keep no history)."""
    source = outerjoin(ResponseRow, Customer, Customer.id == ResponseRow.customer_id)
    return source, func.coalesce(Customer.tier, UNKNOWN)


def _by_segment() -> tuple[Any, Any]:
    on = CustomerMetrics.customer_id == ResponseRow.customer_id
    source = outerjoin(ResponseRow, CustomerMetrics, on)
    return source, func.coalesce(CustomerMetrics.rfm_segment, UNKNOWN)


def _by_agent() -> tuple[Any, Any]:
    source = outerjoin(ResponseRow, StaffUser, StaffUser.id == ResponseRow.agent_id)
    return source, func.coalesce(StaffUser.username, BOT)


# Per grouping: the rows to count (surveys, outer-joined to what names the group) and the key.
_GROUP_KEYS: dict[str, Callable[[], tuple[Any, Any]]] = {
    "channel": _by_channel,
    "tier": _by_tier,
    "segment": _by_segment,
    "agent": _by_agent,
}


def survey_report_query(*, since: datetime, until: datetime, by: str | None = None) -> Select:
    """The statement behind survey_report (exposed for EXPLAIN and the dashboard)."""
    window = _in_window(since, until)
    if by is None:
        return select(*_figure_columns()).where(window)
    source, key = _GROUP_KEYS[check_choice(by, GROUPINGS, "report grouping")]()
    group = key.label("group_key")
    query = select(group, *_figure_columns()).select_from(source).where(window)
    return query.group_by(group)


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _figures(group: str | None, row: Any) -> SurveyFigures:
    asked, answered, partial = int(row.asked), int(row.answered), int(row.partial)
    csat_answers = int(row.csat_answers)
    nps_answers, promoters, detractors = (
        int(row.nps_answers),
        int(row.promoters),
        int(row.detractors),
    )
    average = row.csat_average
    return SurveyFigures(
        group=group,
        asked=asked,
        answered=answered,
        partial=partial,
        declined=int(row.declined),
        no_reply=int(row.no_reply),
        response_rate=_share(answered + partial, asked),
        csat_answers=csat_answers,
        csat_average=None if average is None else round(float(average), 2),
        csat_satisfied_share=_share(int(row.satisfied), csat_answers),
        nps_answers=nps_answers,
        promoters=promoters,
        passives=int(row.passives),
        detractors=detractors,
        nps=nps_score(promoters, detractors, nps_answers),
    )


def survey_report(
    session: Session, *, since: datetime, until: datetime, by: str | None = None
) -> list[SurveyFigures]:
    """CSAT, NPS and response rate of the surveys asked in [since, until), in one query.

    Without `by`, one entry (group None; zero counts and None averages for an empty range);
    with `by` (channel, tier, segment or agent), one entry per group that has surveys, the
    largest first.
    """
    rows = session.execute(survey_report_query(since=since, until=until, by=by)).all()
    if by is None:
        return [_figures(None, rows[0])]
    figures = [_figures(str(row.group_key), row) for row in rows]
    return sorted(figures, key=lambda f: (-f.asked, f.group or ""))


def _themes_source(dialect: str) -> tuple[Any, Any]:
    """Each theme of a response as a row, and the condition that its themes are a JSON array."""
    themes = ResponseRow.themes
    if dialect == "postgresql":
        elements = func.json_array_elements_text(themes).table_valued("value")
        return elements.render_derived(name="theme"), func.json_typeof(themes) == "array"
    return func.json_each(themes).table_valued("value"), func.json_type(themes) == "array"


def _bytewise(column: Any, dialect: str) -> Any:
    """Ties in code point order on both databases (SQLite compares bytes already)."""
    return column.collate("C") if dialect == "postgresql" else column


def top_themes(
    session: Session, *, since: datetime, until: datetime, limit: int = 10
) -> list[tuple[str, int]]:
    """The most mentioned themes of the comments of surveys asked in [since, until) (answered
    or partial), with counts."""
    dialect = session.get_bind().dialect.name
    theme, is_array = _themes_source(dialect)
    mentions = func.count().label("mentions")
    query = (
        select(theme.c.value, mentions)
        .select_from(ResponseRow)
        .join(theme, true())
        .where(_in_window(since, until), ResponseRow.status.in_(RESPONDED), is_array)
        .group_by(theme.c.value)
        .order_by(mentions.desc(), _bytewise(theme.c.value, dialect))
        .limit(check_positive(limit, "limit"))
    )
    return [(str(value), int(count)) for value, count in session.execute(query)]


def build_survey_report(
    session: Session, *, since: datetime, until: datetime, by: str | None = None
) -> SurveyReport:
    """The figures and the top ten themes of one report."""
    groups = survey_report(session, since=since, until=until, by=by)
    themes = top_themes(session, since=since, until=until)
    return SurveyReport(since, until, by, groups, themes)


# Rendering ------------------------------------------------------------------------------------

COLUMNS = [
    "group",
    "asked",
    "answered",
    "partial",
    "declined",
    "no_reply",
    "response_rate",
    "csat_answers",
    "csat_average",
    "csat_satisfied_share",
    "nps_answers",
    "promoters",
    "passives",
    "detractors",
    "nps",
]
TABLE_HEADINGS = [
    "asked",
    "answered",
    "partial",
    "declined",
    "no reply",
    "response",
    "CSAT n",
    "CSAT avg",
    "satisfied",
    "NPS n",
    "promoters",
    "passives",
    "detractors",
    "NPS",
]
ALL = "all"


def render_survey_report(report: SurveyReport, fmt: str) -> str:
    """The report as an aligned table, CSV (UTF-8 with a BOM, for Excel) or JSON."""
    render = {"table": _as_table, "csv": _as_csv, "json": _as_json}
    return render[check_choice(fmt, FORMATS, "report format")](report)


def _as_json(report: SurveyReport) -> str:
    document = {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "by": report.by,
        "groups": [asdict(figures) for figures in report.groups],
        "top_themes": [{"theme": theme, "count": count} for theme, count in report.top_themes],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _csv_cell(value: Any) -> Any:
    """Text a spreadsheet would run as a formula is neutralised (crm_store.masking)."""
    if value is None:
        return ""
    return spreadsheet_safe(value) if isinstance(value, str) else value


def _as_csv(report: SurveyReport) -> str:
    """Figures, a blank line, then the themes; the BOM tells Excel the file is UTF-8."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([report.by or "group", *COLUMNS[1:]])
    for figures in report.groups:
        values = asdict(figures)
        writer.writerow([_csv_cell(values[c]) for c in COLUMNS])
    writer.writerow([])
    writer.writerow(["theme", "count"])
    writer.writerows((_csv_cell(theme), count) for theme, count in report.top_themes)
    return "\ufeff" + out.getvalue()


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table_row(f: SurveyFigures) -> list[str]:
    return [
        ALL if f.group is None else f.group,
        *(str(n) for n in (f.asked, f.answered, f.partial, f.declined, f.no_reply)),
        _percent(f.response_rate),
        str(f.csat_answers),
        _number(f.csat_average, 2),
        _percent(f.csat_satisfied_share),
        *(str(n) for n in (f.nps_answers, f.promoters, f.passives, f.detractors)),
        _number(f.nps, 1),
    ]


def _as_table(report: SurveyReport) -> str:
    figures = [[report.by or "surveys", *TABLE_HEADINGS]]
    figures += [_table_row(f) for f in report.groups]
    themes = [["top theme", "mentions"]] + [[t, str(n)] for t, n in report.top_themes]
    if len(themes) == 1:
        themes.append(["-", "0"])
    return align(figures) + "\n" + align(themes)


def display_width(text: str) -> int:
    """Terminal columns: wide and full-width characters (Chinese) take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def align(rows: Sequence[Sequence[str]]) -> str:
    """Rows as text columns: the first left-aligned, the others right-aligned."""
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]))]

    def cell(i: int, text: str) -> str:
        pad = " " * (widths[i] - display_width(text))
        return text + pad if i == 0 else pad + text

    return "".join("  ".join(cell(i, t) for i, t in enumerate(row)) + "\n" for row in rows)
