"""Every dashboard route, the CSV exports and the chart library included, is the manager's:
anonymous pages go to the login, the JSON API answers 401, agents and supervisors get 403."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bot.console.conftest import Console

PAGES = [
    "/dashboard",
    "/dashboard/surveys",
    "/dashboard/campaigns",
    "/dashboard/bot",
    "/dashboard/customers",
    "/dashboard/assets/echarts.min.js",
    *(f"/dashboard/export/{name}?from=2026-10-01&to=2026-10-31" for name in ("comments", "bot")),
]
APIS = ["/api/dashboard/bot", "/api/dashboard/survey-trend?period=month"]
ROUTES = {
    "/dashboard",
    "/dashboard/<view:str>",
    "/dashboard/export/<figure:str>",
    "/dashboard/assets/echarts.min.js",
    "/api/dashboard/<figure:str>",
}


def test_these_are_all_the_dashboard_routes(console: Console) -> None:
    paths = {"/" + route.path.lstrip("/") for route in console.app.router.routes}
    assert {path for path in paths if "dashboard" in path} == ROUTES


async def test_anonymous_is_sent_to_the_login(browsers: Any) -> None:
    anonymous = await browsers()
    for path in PAGES:
        async with anonymous.http.get(anonymous.base + path, allow_redirects=False) as answer:
            assert (answer.status, answer.headers["Location"]) == (302, "/login"), path
    for path in APIS:
        assert (await anonymous.get(path))[0] == 401, path


@pytest.mark.parametrize("username", ["agent", "supervisor"])
async def test_agents_and_supervisors_are_refused(browsers: Any, username: str) -> None:
    browser = await browsers(username)
    for path in PAGES:
        status, page = await browser.get(path)
        assert status == 403 and "无权访问" in page, path
        assert "导出" not in page and "echarts" not in page, path
    for path in APIS:
        status, body = await browser.get(path)
        assert status == 403 and "error" in body, path


async def test_a_manager_is_let_in_everywhere(browsers: Any) -> None:
    manager = await browsers("manager")
    for path in PAGES + APIS:
        assert (await manager.get(path))[0] == 200, path
