"""The manager dashboard in headless chromium against the real system (`carebot run`, its demo
CRM): a manager narrows the dates and a filter and the charts follow the figures, exports a CSV
and reads it back; an agent is refused (screenshots docs/screenshots/dashboard-*.png)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from bot.reports.render import to_csv
from crm_store.dashboard import FIGURES, DashboardFilter, day_window, read_figure
from crm_store.db import make_engine, session_scope
from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_console import console_login
from tests.integration.system import System
from tests.integration.test_handoff import console_url

pytestmark = pytest.mark.integration

NewContext = Callable[..., BrowserContext]
VIEWS = {
    "surveys": "满意度调查",
    "campaigns": "关怀活动",
    "bot": "机器人表现",
    "customers": "客户分析",
}


def scores(system: System, first: date, last: date, **dimensions: str) -> list[object]:
    """The survey-scores rows straight from the system's CRM, for the page's filter."""
    since, until = day_window(first, last, tz="Asia/Shanghai")
    engine = make_engine(f"sqlite:///{system.var_dir / 'crm.db'}")
    try:
        with session_scope(engine) as session:
            f = DashboardFilter(since, until, **dimensions)  # type: ignore[arg-type]
            return read_figure(session, "survey-scores", f)
    finally:
        engine.dispose()


def drawn_sum(page: Page, chart: str) -> str:
    element = page.locator(f"#chart-{chart}")
    expect(element).to_have_attribute("data-drawn", "true")
    expect(element.locator("canvas").first).to_be_visible()
    return str(element.get_attribute("data-series-sum"))


def answers(rows: list[object]) -> str:
    return str(sum(row.answers for row in rows))  # type: ignore[attr-defined]


def shown_range(page: Page) -> tuple[date, date]:
    first = page.locator('#filters input[name="from"]').input_value()
    last = page.locator('#filters input[name="to"]').input_value()
    return date.fromisoformat(first), date.fromisoformat(last)


def test_a_manager_filters_the_dashboard_and_exports_a_csv(
    system: System, new_context: NewContext
) -> None:
    url = console_url(system)
    shots: dict[str, bytes] = {}
    page = new_context().new_page()
    console_login(page, url, "manager")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("heading", name="数据看板")).to_be_visible()
    first, last = shown_range(page)
    assert last - first == timedelta(days=89)
    everything = scores(system, first, last)
    assert drawn_sum(page, "scores") == answers(everything) != "0"
    expect(page.locator("#chart-trend")).to_have_attribute("data-series-count", "3")

    narrowed = last - timedelta(days=13)
    page.locator('#filters input[name="from"]').fill(narrowed.isoformat())
    page.locator('#filters select[name="channel"]').select_option("wechat")
    page.get_by_role("button", name="应用筛选").click()
    expect(page).to_have_url(re.compile(r"channel=wechat"))
    wechat = scores(system, narrowed, last, channel="wechat")
    assert drawn_sum(page, "scores") == answers(wechat) != answers(everything)
    expect(page.locator('#filters select[name="channel"]')).to_have_value("wechat")
    shots["dashboard-surveys.png"] = page.screenshot(full_page=True)

    table = page.locator("#table-survey-scores")
    with page.expect_download() as download:
        table.get_by_role("link", name="导出 CSV").click()
    raw = download.value.path().read_bytes()
    assert download.value.suggested_filename == "carebot-survey-scores.csv"
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8") == to_csv(wechat, FIGURES["survey-scores"].row_type)
    lines = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert str(sum(int(line["answers"]) for line in lines)) == answers(wechat)

    page.get_by_role("link", name=VIEWS["campaigns"]).click()  # the tabs keep the filter
    expect(page).to_have_url(re.compile(r"/dashboard/campaigns\?.*channel=wechat"))
    for view in ("campaigns", "bot", "customers"):
        page.get_by_role("link", name=VIEWS[view]).click()
        page.get_by_role("link", name="重置").click()
        expect(page).to_have_url(re.compile(rf"/dashboard/{view}$"))
        for chart in page.locator(".chart").all():
            expect(chart).to_have_attribute("data-drawn", "true")
        shots[f"dashboard-{view}.png"] = page.screenshot(full_page=True)
    for name, image in shots.items():  # written last: docs/ only shows a run that passed
        (SCREENSHOTS / name).write_bytes(image)


def test_an_agent_is_refused_the_dashboard(system: System, new_context: NewContext) -> None:
    page = new_context().new_page()
    console_login(page, console_url(system), "agent")
    expect(page).to_have_url(re.compile(r"/queue$"))
    answer = page.goto(console_url(system) + "/dashboard")
    assert answer is not None and answer.status == 403
    expect(page.get_by_text("您的角色无权访问此页面")).to_be_visible()
    expect(page.get_by_role("link", name="数据看板")).to_have_count(0)
