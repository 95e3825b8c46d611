from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from crm_helpers import NOW, a_customer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from bot.reports.render import align, display_width, render_survey_report
from crm_store.dashboard import day_window
from crm_store.dashboard.survey_report import (
    SurveyReport,
    survey_report,
    survey_report_query,
    top_themes,
)
from crm_store.dashboard.surveys import SurveyFigures
from crm_store.errors import InvalidInput
from crm_store.models import CustomerMetrics, SurveyResponse
from crm_store.staff import create_staff_user

SINCE = datetime(2026, 11, 1, tzinfo=timezone.utc)
UNTIL = datetime(2026, 12, 1, tzinfo=timezone.utc)


def figures(group: str | None, *values: Any) -> SurveyFigures:
    return SurveyFigures(group, *values)


# asked, answered, partial, declined, no reply, rate, CSAT n, CSAT avg, satisfied, NPS n,
# promoters, passives, detractors, NPS
EXPECTED: dict[str | None, list[SurveyFigures]] = {
    None: [figures(None, 8, 5, 0, 1, 2, 0.625, 4, 3.5, 0.5, 4, 2, 1, 1, 25.0)],
    "channel": [
        figures("wechat", 5, 3, 0, 0, 2, 0.6, 2, 2.5, 0.0, 2, 1, 0, 1, 0.0),
        figures("web", 3, 2, 0, 1, 0, 0.6667, 2, 4.5, 1.0, 2, 1, 1, 0, 50.0),
    ],
    "tier": [  # equal sizes: in code point order, "unknown" (anonymous) first
        figures("unknown", 2, 1, 0, 0, 1, 0.5, 1, 3.0, 0.0, 0, 0, 0, 0, None),
        figures("普通", 2, 1, 0, 1, 0, 0.5, 1, 2.0, 0.0, 1, 0, 0, 1, -100.0),
        figures("金卡", 2, 2, 0, 0, 0, 1.0, 2, 4.5, 1.0, 2, 1, 1, 0, 50.0),
        figures("银卡", 2, 1, 0, 0, 1, 0.5, 0, None, None, 1, 1, 0, 0, 100.0),
    ],
    "segment": [  # the customer without metrics and the anonymous surveys are both "unknown"
        figures("unknown", 4, 2, 0, 0, 2, 0.5, 1, 3.0, 0.0, 1, 1, 0, 0, 100.0),
        figures("at_risk", 2, 1, 0, 1, 0, 0.5, 1, 2.0, 0.0, 1, 0, 0, 1, -100.0),
        figures("champions", 2, 2, 0, 0, 0, 1.0, 2, 4.5, 1.0, 2, 1, 1, 0, 50.0),
    ],
    "agent": [
        figures("bot", 4, 2, 0, 1, 1, 0.5, 2, 4.0, 0.5, 1, 1, 0, 0, 100.0),
        figures("agent", 2, 2, 0, 0, 0, 1.0, 2, 3.0, 0.5, 2, 0, 1, 1, -50.0),
        figures("agent2", 2, 1, 0, 0, 1, 0.5, 0, None, None, 1, 1, 0, 0, 100.0),
    ],
}
THEMES = [("物流", 3), ("价格", 2), ("售后", 1), ("客服态度", 1)]  # ties in code point order


def _metrics(customer_id: int, segment: str) -> CustomerMetrics:
    return CustomerMetrics(
        customer_id=customer_id,
        computed_at=NOW,
        frequency=3,
        monetary_cents=100_000,
        rfm_segment=segment,
        churn_risk=10,
        clv_cents=200_000,
        lifecycle_stage="loyal",
    )


def _survey(
    number: int,
    at: datetime,
    channel: str,
    customer_id: int | None,
    agent_id: int | None,
    status: str,
    csat: int | None,
    nps: int | None,
    themes: list[str],
) -> SurveyResponse:
    return SurveyResponse(
        conversation_id=f"c{number}",
        trigger="end_of_chat",
        channel=channel,
        status=status,
        customer_id=customer_id,
        agent_id=agent_id,
        csat=csat,
        nps=nps,
        themes=themes,
        asked_at=at,
        answered_at=None if status == "asked" else at + timedelta(minutes=1),
    )


@pytest.fixture
def surveys(session: Session) -> None:
    """Eight surveys in November 2026 and two just outside it, built to be counted by hand."""
    gold = a_customer(session, "金卡客户", tier="金卡").id
    plain = a_customer(session, "普通客户", tier="普通").id
    silver = a_customer(session, "银卡客户", tier="银卡").id  # never analysed: segment unknown
    agent = create_staff_user(session, username="agent", display_name="小张", role="agent").id
    agent2 = create_staff_user(session, username="agent2", display_name="小李", role="agent").id
    session.add_all([_metrics(gold, "champions"), _metrics(plain, "at_risk")])
    day, second = timedelta(days=1), timedelta(seconds=1)
    rows = [  # (asked at, channel, customer, agent, status, CSAT, NPS, themes)
        (SINCE, "web", gold, None, "answered", 5, 10, ["物流", "客服态度"]),
        (SINCE + day, "web", gold, agent, "answered", 4, 8, ["物流", "售后"]),
        (SINCE + 2 * day, "wechat", plain, agent, "answered", 2, 3, ["价格", "物流"]),
        (SINCE + 3 * day, "wechat", None, None, "answered", 3, None, ["价格"]),
        (SINCE + 4 * day, "wechat", silver, agent2, "answered", None, 9, []),
        (SINCE + 5 * day, "web", plain, None, "declined", None, None, []),
        (SINCE + 6 * day, "wechat", None, agent2, "asked", None, None, []),
        (UNTIL - second, "wechat", silver, None, "asked", None, None, []),
        (UNTIL, "web", gold, None, "answered", 1, 0, ["物流"]),  # just after the range
        (SINCE - second, "web", None, None, "answered", 1, 0, ["售后"]),  # just before it
    ]
    session.add_all(_survey(number, *row) for number, row in enumerate(rows, 1))
    session.flush()


@pytest.mark.parametrize("by", list(EXPECTED))
@pytest.mark.usefixtures("surveys")
def test_survey_report_per_grouping(session: Session, by: str | None) -> None:
    assert survey_report(session, since=SINCE, until=UNTIL, by=by) == EXPECTED[by]


@pytest.mark.usefixtures("surveys")
def test_top_themes_count_the_answers_in_the_range(session: Session) -> None:
    assert top_themes(session, since=SINCE, until=UNTIL) == THEMES
    assert top_themes(session, since=SINCE, until=UNTIL, limit=2) == THEMES[:2]


@pytest.mark.usefixtures("surveys")
def test_an_empty_range_has_zero_counts_and_no_averages(session: Session) -> None:
    since, until = datetime(2025, 1, 1, tzinfo=timezone.utc), datetime(2025, 2, 1)
    empty = figures(None, 0, 0, 0, 0, 0, None, 0, None, None, 0, 0, 0, 0, None)
    assert survey_report(session, since=since, until=until) == [empty]
    assert survey_report(session, since=since, until=until, by="agent") == []
    assert top_themes(session, since=since, until=until) == []


@pytest.mark.usefixtures("surveys")
def test_partial_answers_count_as_responses_and_in_the_averages(session: Session) -> None:
    """Issue 16: two surveys left midway, one after a CSAT, one after a CSAT, an NPS and a
    comment; the four outcomes add up to the surveys asked."""
    day = timedelta(days=1)
    left = [
        (SINCE + 7 * day, "web", None, None, "partial", 1, None, []),
        (SINCE + 8 * day, "web", None, None, "partial", 4, 9, ["售后"]),
    ]
    session.add_all(_survey(number, *row) for number, row in enumerate(left, 20))
    session.flush()
    [overall] = survey_report(session, since=SINCE, until=UNTIL)
    # CSAT 5, 4, 2, 3, 1, 4: 19 / 6; NPS 10, 8, 3, 9, 9: 3 promoters, 1 detractor of 5.
    assert overall == figures(None, 10, 5, 2, 1, 2, 0.7, 6, 3.17, 0.5, 5, 3, 1, 1, 40.0)
    outcomes = (overall.answered, overall.partial, overall.declined, overall.no_reply)
    assert sum(outcomes) == overall.asked
    web = next(f for f in survey_report(session, since=SINCE, until=UNTIL, by="channel"))
    assert (web.group, web.asked, web.partial, web.response_rate) == ("web", 5, 2, 0.8)
    assert top_themes(session, since=SINCE, until=UNTIL)[2] == ("售后", 2)


def test_an_empty_database_reports_zeros(session: Session) -> None:
    assert survey_report(session, since=SINCE, until=UNTIL)[0].asked == 0


def test_report_arguments_are_checked(session: Session) -> None:
    with pytest.raises(InvalidInput, match="report grouping"):
        survey_report(session, since=SINCE, until=UNTIL, by="region")
    with pytest.raises(InvalidInput, match="before it starts"):
        survey_report(session, since=UNTIL, until=SINCE)
    with pytest.raises(InvalidInput, match="limit"):
        top_themes(session, since=SINCE, until=UNTIL, limit=0)


@pytest.mark.parametrize("by", list(EXPECTED))
def test_the_report_reads_a_date_range_through_the_asked_at_index(
    session: Session, by: str | None
) -> None:
    plan = _plan(session, survey_report_query(since=SINCE, until=UNTIL, by=by))
    assert "ix_survey_responses_asked_at" in plan, plan


def _plan(session: Session, query: Select) -> str:
    """The query plan; PostgreSQL is told to avoid scans so that the tiny test tables do not
    hide whether the index can serve the range."""
    dialect = session.get_bind().dialect
    compiled = query.compile(dialect=dialect)
    if dialect.name == "postgresql":
        session.execute(select(func.set_config("enable_seqscan", "off", True)))
        sql, params = "EXPLAIN " + str(compiled), compiled.params
    else:
        sql = "EXPLAIN QUERY PLAN " + str(compiled)
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    rows = session.connection().exec_driver_sql(sql, params).all()
    return "\n".join(str(row[-1]) for row in rows)


def test_day_window_covers_whole_local_days() -> None:
    assert day_window(date(2026, 11, 1), date(2026, 11, 30)) == (
        datetime(2026, 10, 31, 16, tzinfo=timezone.utc),
        datetime(2026, 11, 30, 16, tzinfo=timezone.utc),
    )
    assert day_window(date(2026, 11, 1), date(2026, 11, 1), tz="UTC") == (
        SINCE,
        SINCE + timedelta(days=1),
    )
    with pytest.raises(InvalidInput, match="before it starts"):
        day_window(date(2026, 11, 2), date(2026, 11, 1))
    with pytest.raises(InvalidInput, match="time zone"):
        day_window(date(2026, 11, 1), date(2026, 11, 1), tz="Mars/Olympus")


def _report(by: str | None = "tier") -> SurveyReport:
    return SurveyReport(SINCE, UNTIL, by, EXPECTED[by], THEMES)


def test_the_table_lines_up_chinese_labels() -> None:
    text = render_survey_report(_report(), "table")
    figures_block, themes_block = text.split("\n\n")
    lines = figures_block.splitlines()
    assert lines[0].split()[:3] == ["tier", "asked", "answered"]
    assert lines[2].split() == (
        ["普通", "2", "1", "0", "1", "0", "50.0%", "1", "2.00", "0.0%", "1", "0", "0", "1"]
        + ["-100.0"]
    )
    assert lines[4].split()[7:11] == ["0", "-", "-", "1"]  # no CSAT answers: no average
    assert len({display_width(line) for line in lines}) == 1
    assert themes_block.splitlines()[1].split() == ["物流", "3"]


def test_the_table_says_all_without_grouping_and_shows_no_themes_as_a_dash() -> None:
    report = SurveyReport(SINCE, UNTIL, None, EXPECTED[None], [])
    lines = render_survey_report(report, "table").splitlines()
    assert lines[0].startswith("surveys") and lines[1].startswith("all")
    assert lines[-1].split() == ["-", "0"]


def test_csv_has_a_bom_for_excel_and_the_raw_figures() -> None:
    text = render_survey_report(_report(), "csv")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0][:2] == ["tier", "asked"] and rows[0][-1] == "nps"
    assert rows[0][:7] == ["tier", "asked", "answered", "partial", "declined", "no_reply"] + [
        "response_rate"
    ]
    assert rows[4] == (
        ["银卡", "2", "1", "0", "0", "1", "0.5", "0", "", "", "1", "1", "0", "0", "100.0"]
    )
    assert rows[5] == [] and rows[6] == ["theme", "count"] and rows[7] == ["物流", "3"]


def test_json_holds_every_figure() -> None:
    document = json.loads(render_survey_report(_report("agent"), "json"))
    assert document["by"] == "agent" and document["since"] == "2026-11-01T00:00:00+00:00"
    assert document["groups"] == [asdict(f) for f in EXPECTED["agent"]]
    assert document["top_themes"][0] == {"theme": "物流", "count": 3}


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(InvalidInput, match="report format"):
        render_survey_report(_report(), "xlsx")


def test_align_pads_by_display_width() -> None:
    assert align([["名字", "n"], ["ab", "10"]]) == "名字   n\nab    10\n"
