"""The manager dashboard's pages on the seeded demo CRM: every view, its filters, its exports."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Any

import pytest

from bot.console.dashboard import (
    VIEWS,
    cell,
    misunderstood_chart,
    named,
    script_json,
    table,
)
from bot.console.labels import SEGMENT_NAMES
from bot.reports.render import to_csv
from crm_store.dashboard import FIGURES, DashboardFilter, day_window, read_figure
from crm_store.dashboard.bot import Misunderstood
from crm_store.dashboard.surveys import SurveyFigures
from crm_store.db import session_scope
from tests.bot.console.conftest import Console

CHART_DATA = re.compile(r'<script type="application/json" id="chart-data">(.*?)</script>', re.S)
RANGE = "from=2026-08-23&to=2026-11-21"


def charts(page: str) -> dict[str, Any]:
    match = CHART_DATA.search(page)
    assert match, "the page embeds its chart data"
    return json.loads(match.group(1))


def series_sum(chart: dict[str, Any]) -> float:
    return sum(v for series in chart["series"] for v in series["data"] if v is not None)


@pytest.mark.parametrize("view", sorted(VIEWS))
async def test_every_view_shows_its_charts_and_tables(browsers: Any, view: str) -> None:
    manager = await browsers("manager")
    status, page = await manager.get(f"/dashboard/{view}?{RANGE}")
    assert status == 200
    assert set(charts(page)) == set(VIEWS[view].charts)
    for figure in VIEWS[view].figures:
        assert f'href="/dashboard/export/{figure}?' in page, figure
    assert 'src="/dashboard/assets/echarts.min.js"' in page
    assert 'value="2026-08-23"' in page and 'value="2026-11-21"' in page


async def test_the_survey_tables_show_the_four_outcomes(browsers: Any) -> None:
    """Issue 16: answered, partial, declined and no reply, each a column, next to the total."""
    manager = await browsers("manager")
    status, page = await manager.get(f"/dashboard/surveys?{RANGE}")
    assert status == 200
    headings = (
        "<th>发出</th><th>完整回答</th><th>部分回答</th><th>拒答</th><th>未回复</th><th>回复率</th>"
    )
    assert page.count(headings) == 2  # the trend's table and the breakdown's


def test_a_survey_row_reads_its_outcomes_in_chinese() -> None:
    row = SurveyFigures(None, 10, 5, 2, 1, 2, 0.7, 6, 3.17, 0.5, 5, 3, 1, 1, 40.0)
    shown = table("survey-breakdown", [row])
    assert shown["headings"][:7] == [
        "分组",
        "发出",
        "完整回答",
        "部分回答",
        "拒答",
        "未回复",
        "回复率",
    ]
    assert shown["rows"][0][:7] == ["—", "10", "5", "2", "1", "2", "70.00%"]


async def test_the_default_range_is_the_last_90_days(browsers: Any) -> None:
    status, page = await (await browsers("manager")).get("/dashboard")
    assert status == 200 and "满意度调查" in page
    assert 'name="from" value="2026-08-24"' in page and 'name="to" value="2026-11-21"' in page


async def test_a_filter_changes_the_figures(console: Console, browsers: Any) -> None:
    manager = await browsers("manager")
    _, everything = await manager.get(f"/dashboard/surveys?{RANGE}")
    _, wechat = await manager.get(f"/dashboard/surveys?{RANGE}&channel=wechat&tier=金卡")
    _, web = await manager.get(f"/dashboard/surveys?{RANGE}&channel=web")
    scores = [series_sum(charts(page)["scores"]) for page in (everything, wechat, web)]
    assert scores[0] == scores[1] > scores[2] == 0
    since, until = day_window(date(2026, 8, 23), date(2026, 11, 21), tz="Asia/Shanghai")
    with session_scope(console.crm) as session:
        rows = read_figure(session, "survey-scores", DashboardFilter(since, until, tier="金卡"))
    assert scores[1] == sum(row.answers for row in rows)
    assert '<option value="金卡" selected>' in wechat
    assert '<option value="wechat" selected>' in wechat


async def test_the_export_is_the_csv_of_the_same_rows(console: Console, browsers: Any) -> None:
    manager = await browsers("manager")
    async with manager.http.get(f"{manager.base}/dashboard/export/segments?{RANGE}") as answer:
        assert answer.status == 200
        assert answer.headers["Content-Disposition"] == (
            'attachment; filename="carebot-segments.csv"'
        )
        assert answer.headers["Content-Type"].startswith("text/csv")
        raw = await answer.read()
    assert raw.startswith(b"\xef\xbb\xbf")
    since, until = day_window(date(2026, 8, 23), date(2026, 11, 21), tz="Asia/Shanghai")
    with session_scope(console.crm) as session:
        rows = read_figure(session, "segments", DashboardFilter(since, until))
    assert raw.decode("utf-8") == to_csv(rows, FIGURES["segments"].row_type)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "开始日期应为 YYYY-MM-DD"),
        ("from=2026-11-02&to=2026-11-01", "ends"),
        ("channel=fax", "channel"),
        ("period=day", "period"),
        ("page=x", "page"),
    ],
)
async def test_a_bad_filter_is_explained(browsers: Any, query: str, message: str) -> None:
    manager = await browsers("manager")
    status, page = await manager.get(f"/dashboard/surveys?{query}")
    assert status == 400 and "筛选条件无效" in page and message in page


async def test_unknown_views_and_figures_are_not_found(browsers: Any) -> None:
    manager = await browsers("manager")
    assert (await manager.get("/dashboard/nothing"))[0] == 404
    assert (await manager.get("/dashboard/export/nothing"))[0] == 404
    assert (await manager.get("/api/dashboard/nothing"))[0] == 404


async def test_comments_are_searchable_and_paged(browsers: Any) -> None:
    manager = await browsers("manager")
    status, page = await manager.get(f"/dashboard/surveys?{RANGE}&text=zzz-nothing")
    assert status == 200 and "共 0 条" in page
    assert 'value="zzz-nothing"' in page


def test_chart_data_cannot_close_its_script_element() -> None:
    text = "</script><script>alert(1)</script><!--"
    embedded = script_json(misunderstood_chart([Misunderstood(text, 3, datetime(2026, 11, 1))]))
    assert "<" not in embedded
    assert json.loads(embedded)["categories"] == [text]


def test_breakdown_groups_read_in_chinese_and_other_names_stay() -> None:
    assert [named("group", code) for code in ("wechat", "high", "champions", "金卡", "小张")] == [
        "微信",
        "流失风险高",
        SEGMENT_NAMES["champions"],
        "金卡",
        "小张",
    ]
    assert cell("group", "2026-11-16") == "2026-11-16"  # a trend's period is not a code


async def test_verbatims_are_masked_unless_a_manager_asks_for_them_in_full(
    console: Console, browsers: Any
) -> None:
    """Issue 15: a phone typed into a comment is masked on the page and in the export; the full
    export is the manager's choice and on the audit log; a formula never reaches Excel."""
    from crm_store.audit import list_audit_entries
    from crm_store.feedback import record_feedback

    with session_scope(console.crm) as session:
        record_feedback(
            session,
            conversation_id="o_demo_openid",
            channel="wechat",
            text="=HYPERLINK(1) 请打13800138000",
            themes=[],
            polarity="neutral",
            customer_id=1,
            clock=console.clock,
        )
    manager = await browsers("manager")
    status, page = await manager.get("/dashboard/surveys")
    assert status == 200 and "138****8000" in page and "13800138000" not in page
    _, masked = await manager.get("/dashboard/export/comments")
    _, full = await manager.get("/dashboard/export/comments?full=1")
    assert "'=HYPERLINK(1) 请打138****8000" in masked and "13800138000" not in masked
    assert "'=HYPERLINK(1) 请打13800138000" in full
    with session_scope(console.crm) as session:
        [entry] = list_audit_entries(session, entity="dashboard", limit=1)
    assert (entry.action, entry.entity_id) == ("export_unmasked", "comments")
    assert entry.actor == f"staff:{console.staff_id('manager')}"
