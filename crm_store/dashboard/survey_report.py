"""The survey report (`carebot report surveys`): CSAT, NPS and the response rate of the surveys
asked in [since, until), for everything or per channel, tier, RFM segment or agent, with the top
themes of the answers.

It is the dashboard's survey breakdown and top themes over a date range and nothing else
(crm_store.dashboard.surveys counts them), so the report and the dashboard agree to the digit.
It returns data; `bot/reports/` renders it as a table, CSV or JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from crm_store.dashboard.filters import DashboardFilter
from crm_store.dashboard.surveys import (
    SurveyFigures,
    survey_breakdown,
    survey_breakdown_query,
)
from crm_store.dashboard.surveys import top_themes as top_themes_in
from crm_store.validation import check_choice

GROUPINGS = ("channel", "tier", "segment", "agent")


@dataclass(frozen=True)
class SurveyReport:
    since: datetime
    until: datetime
    by: str | None
    groups: list[SurveyFigures]
    top_themes: list[tuple[str, int]]


def _range(since: datetime, until: datetime) -> DashboardFilter:
    """[since, until); naive datetimes are UTC, as everywhere in crm_store."""
    return DashboardFilter(since=since, until=until)


def _grouping(by: str | None) -> str | None:
    return None if by is None else check_choice(by, GROUPINGS, "report grouping")


def survey_report_query(*, since: datetime, until: datetime, by: str | None = None) -> Select:
    """The statement behind survey_report (exposed for EXPLAIN)."""
    return survey_breakdown_query(_range(since, until), by=_grouping(by))


def survey_report(
    session: Session, *, since: datetime, until: datetime, by: str | None = None
) -> list[SurveyFigures]:
    """CSAT, NPS and response rate of the surveys asked in [since, until), in one query.

    Without `by`, one entry (group None; zero counts and None averages for an empty range);
    with `by` (channel, tier, segment or agent), one entry per group that has surveys, the
    largest first.
    """
    return survey_breakdown(session, _range(since, until), by=_grouping(by))


def top_themes(
    session: Session, *, since: datetime, until: datetime, limit: int = 10
) -> list[tuple[str, int]]:
    """The most mentioned themes of the comments of surveys asked in [since, until) (answered
    or partial), with counts."""
    return top_themes_in(session, _range(since, until), limit=limit)


def build_survey_report(
    session: Session, *, since: datetime, until: datetime, by: str | None = None
) -> SurveyReport:
    """The figures and the top ten themes of one report."""
    groups = survey_report(session, since=since, until=until, by=by)
    themes = top_themes(session, since=since, until=until)
    return SurveyReport(since, until, by, groups, themes)
