from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from bot.cli import REPORT_GROUPINGS, main
from bot.reports import render
from crm_store import demo, migrate
from crm_store.analytics import refresh_customer_metrics
from crm_store.clock import fixed
from crm_store.dashboard import day_window, survey_report
from crm_store.db import make_engine, session_scope
from crm_store.surveys import ask_survey

SEEDED_AT = datetime(2026, 12, 1, 4, 0, tzinfo=timezone.utc)
DAYS = ["--from", "2026-01-01", "--to", "2026-11-30"]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """200 demo customers with their surveys and RFM segments, seeded once for the module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'crm.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    demo.seed(engine, customers=200, clock=fixed(SEEDED_AT))
    with session_scope(engine) as session:
        refresh_customer_metrics(session, clock=fixed(SEEDED_AT))
    engine.dispose()
    return url


@pytest.fixture
def crm_db(demo_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CAREBOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CAREBOT_DATABASE_URL", demo_db)
    return demo_db


def expected(url: str, by: str | None) -> survey_report.SurveyReport:
    since, until = day_window(date(2026, 1, 1), date(2026, 11, 30))
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            return survey_report.build_survey_report(session, since=since, until=until, by=by)
    finally:
        engine.dispose()


@pytest.mark.parametrize("by", [None, *REPORT_GROUPINGS])
def test_json_has_the_figures_of_survey_report(
    crm_db: str, by: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    grouping = ["--by", by] if by else []
    assert main(["report", "surveys", *DAYS, *grouping, "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    wanted = expected(crm_db, by)
    assert document["groups"] == [asdict(figures) for figures in wanted.groups]
    assert [(t["theme"], t["count"]) for t in document["top_themes"]] == wanted.top_themes
    assert document["since"] == "2025-12-31T16:00:00+00:00"  # Shanghai days by default
    assert document["groups"][0]["asked"] > document["groups"][0]["answered"] > 0


def test_csv_is_utf8_with_a_bom_for_excel(
    crm_db: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["report", "surveys", *DAYS, "--by", "tier", "--format", "csv"]) == 0
    raw = capsysbinary.readouterr().out
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    wanted = expected(crm_db, "tier")
    assert rows[0][:2] == ["tier", "asked"]
    groups = rows[1 : 1 + len(wanted.groups)]
    assert [(row[0], int(row[1]), int(row[2])) for row in groups] == [
        (f.group, f.asked, f.answered) for f in wanted.groups
    ]
    assert {row[0] for row in groups} <= {"普通", "银卡", "金卡", "钻石", "unknown"}


def test_the_table_is_aligned_and_shows_the_totals(
    crm_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "surveys", *DAYS]) == 0
    figures_block, themes_block = capsys.readouterr().out.split("\n\n")
    header, totals = figures_block.splitlines()
    total = expected(crm_db, None).groups[0]
    assert header.split()[:2] == ["surveys", "asked"]
    outcomes = (total.asked, total.answered, total.partial, total.declined, total.no_reply)
    assert totals.split()[:6] == ["all", *(str(n) for n in outcomes)]
    assert totals.split()[-1] == f"{total.nps:.1f}"
    assert len({render.display_width(line) for line in themes_block.splitlines()}) == 1


def test_the_last_day_is_included_whole_in_the_chosen_time_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        # 23:59 on 30 November in Shanghai, then 00:00 on 1 December; both 30 November in UTC.
        for number, at in enumerate((datetime(2026, 11, 30, 15, 59), datetime(2026, 11, 30, 16))):
            ask_survey(
                session,
                conversation_id=f"c{number}",
                trigger="end_of_chat",
                channel="web",
                clock=fixed(at),
            )
    engine.dispose()
    monkeypatch.setenv("CAREBOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CAREBOT_DATABASE_URL", url)
    day = ["--from", "2026-11-30", "--to", "2026-11-30", "--format", "json"]
    assert main(["report", "surveys", *day]) == 0
    assert json.loads(capsys.readouterr().out)["groups"][0]["asked"] == 1
    assert main(["report", "surveys", *day, "--tz", "UTC"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"][0]["asked"] == 2


def test_days_in_the_wrong_order_are_refused_in_one_line(
    crm_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "surveys", "--from", "2026-11-30", "--to", "2026-11-01"]) == 2
    assert capsys.readouterr().err.startswith("carebot report: the report ends")


def test_a_bad_date_is_a_usage_error(crm_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["report", "surveys", "--from", "2026-11", "--to", "2026-11-30"])
    assert stopped.value.code == 2
    assert "not a date (YYYY-MM-DD): '2026-11'" in capsys.readouterr().err


def test_an_unreachable_database_is_reported_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere"
    monkeypatch.setenv("CAREBOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CAREBOT_DATABASE_URL", url)
    assert main(["report", "surveys", *DAYS]) == 2
    err = capsys.readouterr().err
    assert f"cannot read the CRM database {url}" in err and "Traceback" not in err


def test_the_cli_offers_exactly_the_groupings_of_crm_store() -> None:
    assert survey_report.GROUPINGS == REPORT_GROUPINGS
