"""Every console route refuses an anonymous request and a wrong role; posts need the CSRF token;
sessions are signed and expire."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from bot.console.sessions import COOKIE, new_session, sign, verify
from crm_store.audit import list_audit_entries
from crm_store.db import session_scope
from crm_store.staff import deactivate_staff_user, set_staff_role
from tests.bot.console.conftest import Console

PAGES = ["/queue", "/handoffs/1", "/live", "/snippets", "/audit", "/dashboard"]
PAGES += ["/dashboard/surveys", "/dashboard/export/bot", "/dashboard/assets/echarts.min.js"]
PAGES += ["/campaigns", "/campaigns/birthday"]
APIS = ["/api/queue", "/api/handoffs/1/transcript", "/api/dashboard/bot"]
POSTS = [
    "/handoffs/1/claim",
    "/handoffs/1/reply",
    "/handoffs/1/notes",
    "/handoffs/1/close",
    "/handoffs/1/transfer",
    "/handoffs/1/takeover",
    "/conversations/web-x/pick",
    "/snippets",
    "/snippets/1/delete",
    "/logout",
    "/customers/1/reveal",
    "/campaigns/birthday/switch",
    "/campaigns/birthday/cap",
]
AGENT_ONLY = ["/queue", "/handoffs/1", "/live", "/api/queue", "/api/handoffs/1/transcript"]
AGENT_POSTS = POSTS[:7]
SUPERVISOR_ONLY = ["/snippets", "/audit"]
SUPERVISOR_POSTS = ["/handoffs/1/takeover", "/snippets", "/snippets/1/delete"]
SUPERVISOR_POSTS += ["/customers/1/reveal"]
MANAGER_ONLY = ["/campaigns", "/campaigns/birthday"]
MANAGER_POSTS = ["/campaigns/birthday/switch", "/campaigns/birthday/cap"]


async def test_anonymous_pages_go_to_login_and_the_rest_is_refused(browsers: Any) -> None:
    anonymous = await browsers()
    for path in PAGES:
        status, _ = await anonymous.get(path)
        assert status == 302, path
    for path in APIS:
        assert (await anonymous.get(path))[0] == 401, path
    for path in POSTS:
        assert (await anonymous.post(path, csrf=False))[0] == 401, path


PUBLIC = {"/", "/login", "/health", "/metrics", "/static/<__file_uri__:path>"}
PARAMETERS = [  # how the example paths above fill the routes' parameters
    ("/snippets/1/", "/snippets/<snippet_id:int>/"),
    ("/customers/1/", "/customers/<customer_id:int>/"),
    ("/handoffs/1", "/handoffs/<handoff_id:int>"),
    ("/conversations/web-x/", "/conversations/<conversation_id:str>/"),
    ("/dashboard/surveys", "/dashboard/<view:str>"),
    ("/dashboard/export/bot", "/dashboard/export/<figure:str>"),
    ("/api/dashboard/bot", "/api/dashboard/<figure:str>"),
    ("/campaigns/birthday", "/campaigns/<key:str>"),
]


def route_of(path: str) -> str:
    for example, pattern in PARAMETERS:
        path = path.replace(example, pattern)
    return path


def test_every_route_is_covered_by_these_tests(console: Console) -> None:
    """A new route must be added to the lists above, and so be tested for refusals."""
    routes = {"/" + route.path.lstrip("/") for route in console.app.router.routes}
    assert routes - PUBLIC == {route_of(path) for path in PAGES + APIS + POSTS}


async def test_the_metrics_are_public_and_hold_no_personal_data(browsers: Any) -> None:
    status, page = await (await browsers()).get("/metrics")
    assert status == 200 and "process_cpu_seconds_total" in page
    assert "@" not in page and not re.search(r"\b1\d{10}\b", page)  # no e-mail, no mobile


async def test_home_sends_each_role_to_its_page(browsers: Any) -> None:
    assert (await (await browsers()).get("/"))[0] == 302
    manager, agent = await browsers("manager"), await browsers("agent")
    async with manager.http.get(manager.base + "/", allow_redirects=False) as answer:
        assert answer.headers["Location"] == "/dashboard"
    async with agent.http.get(agent.base + "/", allow_redirects=False) as answer:
        assert answer.headers["Location"] == "/queue"


async def test_a_manager_may_not_work_the_queue(browsers: Any) -> None:
    manager = await browsers("manager")
    for path in AGENT_ONLY + SUPERVISOR_ONLY:
        assert (await manager.get(path))[0] == 403, path
    for path in AGENT_POSTS + SUPERVISOR_POSTS:
        assert (await manager.post(path, {"text": "x", "outcome": "resolved"}))[0] == 403, path
    status, page = await manager.get("/dashboard")
    assert status == 200 and "数据看板" in page


async def test_an_agent_may_not_supervise_or_read_the_dashboard(browsers: Any) -> None:
    agent = await browsers("agent")
    for path in [*SUPERVISOR_ONLY, "/dashboard"]:
        status, page = await agent.get(path)
        assert status == 403 and "无权访问" in page, path
    for path in SUPERVISOR_POSTS:
        assert (await agent.post(path, {"title": "t", "text": "x"}))[0] == 403, path


@pytest.mark.parametrize("username", ["agent", "supervisor"])
async def test_only_a_manager_sees_or_switches_campaigns(browsers: Any, username: str) -> None:
    staff = await browsers(username)
    for path in MANAGER_ONLY:
        status, page = await staff.get(path)
        assert status == 403 and "无权访问" in page, path
    for path in MANAGER_POSTS:
        assert (await staff.post(path, {"enabled": "0", "daily_cap": "1"}))[0] == 403, path


async def test_posts_without_the_csrf_token_are_refused(console: Console, browsers: Any) -> None:
    handoff = console.waiting("web-csrf")
    agent = await browsers("agent")
    for path in [f"/handoffs/{handoff.id}/claim", "/logout", "/conversations/web-x/pick"]:
        assert (await agent.post(path, csrf=False))[0] == 403, path
    agent.csrf = "forged"
    assert (await agent.post(f"/handoffs/{handoff.id}/claim"))[0] == 403
    assert console.rasa.appended == []


async def test_login_needs_its_csrf_token_and_the_right_password(
    console: Console, browsers: Any
) -> None:
    visitor = await browsers()
    form = {"username": "agent", "password": "carebot-demo"}
    assert (await visitor.post("/login", form, csrf=False))[0] == 403
    assert await visitor.login("agent", "wrong-password") == 401
    assert (await visitor.get("/queue"))[0] == 302
    assert await visitor.login("agent") == 303
    status, page = await visitor.get("/queue")
    assert status == 200 and "等待接入" in page
    with session_scope(console.crm) as session:
        actions = [e.action for e in list_audit_entries(session, entity="staff_user")]
    assert actions[:2] == ["login", "login_failed"]


async def test_logout_ends_the_session(browsers: Any) -> None:
    agent = await browsers("agent")
    status, _, location = await agent.post("/logout")
    assert (status, location) == (303, "/login")
    assert (await agent.get("/queue"))[0] == 302


async def test_a_forged_or_expired_cookie_is_anonymous(console: Console, browsers: Any) -> None:
    now = console.clock()
    session = new_session(now, timedelta(hours=1), console.staff_id("supervisor"), "supervisor")
    forged = sign(session, "not-the-secret")
    expired = sign(new_session(now - timedelta(hours=2), timedelta(hours=1), 1, "agent"), "x")
    assert verify(forged, "test-secret", now) is None
    assert verify(sign(session, "test-secret"), "test-secret", now) == session
    assert verify(expired, "x", now) is None
    assert verify("garbage", "x", now) is None and verify(None, "x", now) is None
    browser = await browsers()
    browser.http.cookie_jar.update_cookies({COOKIE: forged})
    assert (await browser.get("/queue"))[0] == 302


@pytest.mark.parametrize("username", ["agent", "supervisor"])
async def test_staff_land_on_the_queue(browsers: Any, username: str) -> None:
    browser = await browsers(username)
    status, page = await browser.get("/queue")
    assert status == 200
    assert ("全部进行中的会话" in page) == (username == "supervisor")


async def test_a_deactivated_or_demoted_account_loses_access_at_once(
    console: Console, browsers: Any
) -> None:
    agent, supervisor = await browsers("agent"), await browsers("supervisor")
    agent_id, supervisor_id = console.staff_id("agent"), console.staff_id("supervisor")
    with session_scope(console.crm) as session:
        deactivate_staff_user(session, staff_id=agent_id, actor="test")
        set_staff_role(session, staff_id=supervisor_id, role="agent", actor="test")
    assert (await agent.get("/queue"))[0] == 302
    assert (await agent.get("/api/queue"))[0] == 401
    assert (await supervisor.get("/snippets"))[0] == 403
    assert (await supervisor.get("/queue"))[0] == 200
