"""`carebot report <figure>` prints what the dashboard's query functions return, to the digit."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.reports.render import to_csv, to_json
from crm_store import migrate
from crm_store.dashboard import FIGURES, DashboardFilter, read_figure
from crm_store.db import make_engine, session_scope
from tests.crm_store.dashboard_fixture import OCT, build

OCTOBER = ["--from", "2026-10-01", "--to", "2026-10-31", "--tz", "UTC"]
# What the command line passes by default beyond the filter (trend days are cut in --tz).
DEFAULTS: dict[str, dict[str, Any]] = {"survey-trend": {"tz": "UTC"}}


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'crm.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        build(session)
    engine.dispose()
    return url


@pytest.fixture
def crm_db(fixture_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CAREBOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CAREBOT_DATABASE_URL", fixture_db)
    return fixture_db


def function_rows(url: str, name: str, f: DashboardFilter, **options: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            return read_figure(session, name, f, **{**DEFAULTS.get(name, {}), **options})
    finally:
        engine.dispose()


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_json_of_every_figure_is_what_its_function_returns(
    crm_db: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", name, *OCTOBER, "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    rows = function_rows(crm_db, name, DashboardFilter(since=OCT[0], until=OCT[1]))
    assert printed == json.loads(to_json(rows))
    assert printed, f"the fixture has rows for {name}"


@pytest.mark.parametrize(
    ("arguments", "name", "dimensions", "options"),
    [
        (
            ["--by", "tier", "--channel", "wechat"],
            "survey-breakdown",
            {"channel": "wechat"},
            {"by": "tier"},
        ),
        (
            ["--period", "month", "--tier", "普通"],
            "survey-trend",
            {"tier": "普通"},
            {"period": "month"},
        ),
        (["--text", "退货", "--page-size", "1"], "comments", {}, {"text": "退货", "page_size": 1}),
        (["--agent", "agent"], "bot", {"agent": "agent"}, {}),
        (
            ["--segment", "champions", "--stage", "loyal"],
            "funnel",
            {"segment": "champions", "stage": "loyal"},
            {},
        ),
    ],
)
def test_filters_and_options_reach_the_function(
    crm_db: str,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    name: str,
    dimensions: dict[str, str],
    options: dict[str, Any],
) -> None:
    assert main(["report", name, *OCTOBER, *arguments, "--format", "json"]) == 0
    f = DashboardFilter(since=OCT[0], until=OCT[1], **dimensions)  # type: ignore[arg-type]
    assert json.loads(capsys.readouterr().out) == json.loads(
        to_json(function_rows(crm_db, name, f, **options))
    )


def test_csv_is_the_export_of_the_same_rows(
    crm_db: str, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["report", "comments", *OCTOBER, "--format", "csv"]) == 0
    raw = capsysbinary.readouterr().out
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = function_rows(crm_db, "comments", DashboardFilter(since=OCT[0], until=OCT[1]))
    assert raw.decode("utf-8") == to_csv(rows, FIGURES["comments"].row_type)
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0][:3] == ["source", "id", "at"]
    assert [line[7] for line in table[1:]] == [row.text for row in rows]
    assert table[3][8] == "客服态度; 退换货"


def test_table_lists_every_row(crm_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "handoff-reasons", *OCTOBER]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["reason", "handoffs", "share"]
    assert [line.split() for line in lines[1:]] == [
        ["customer_request", "2", "0.6667"],
        ["fallback_streak", "1", "0.3333"],
    ]


@pytest.mark.parametrize(
    "arguments",
    [
        ["funnel", "--tier", "黑卡"],
        ["themes", "--from", "2026-10-01"],
        ["survey-breakdown", "--from", "2026-10-31", "--to", "2026-10-01"],
        ["comments", "--page", "0"],
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    crm_db: str, arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("carebot report: ") and error.count("\n") == 1


def test_comments_are_printed_masked_unless_asked_for_in_full(
    crm_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15: `--full` prints customers' words unmasked and leaves an audit entry."""
    from crm_store.audit import list_audit_entries
    from crm_store.feedback import record_feedback

    url = f"sqlite:///{tmp_path / 'own.db'}"  # the module's fixture database stays unchanged
    migrate.upgrade(url)
    monkeypatch.setenv("CAREBOT_DATABASE_URL", url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        record_feedback(
            session,
            conversation_id="c1",
            channel="web",
            text="@SUM(1) 打13800138000",
            themes=[],
            polarity="neutral",
            clock=lambda: OCT[0],
        )
    assert main(["report", "comments", *OCTOBER, "--format", "csv"]) == 0
    masked = capsys.readouterr().out
    assert "'@SUM(1) 打138****8000" in masked and "13800138000" not in masked
    assert main(["report", "comments", *OCTOBER, "--format", "csv", "--full"]) == 0
    assert "'@SUM(1) 打13800138000" in capsys.readouterr().out
    with session_scope(engine) as session:
        [entry] = list_audit_entries(session, entity="dashboard")
    assert (entry.action, entry.entity_id) == ("read_unmasked", "comments")
    engine.dispose()
