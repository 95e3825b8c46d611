"""The staff console against a stranger (docs/security.md), on the real console app served on
loopback with a seeded SQLite CRM and a stub Rasa (the fixtures of tests/bot/console):
password guessing (account lockout with backoff, the per-address limit, one answer for every
refusal, the slow check outside any transaction and for unknown names too), logout voiding a
replayed cookie, CSRF and cross-site posts, the security headers, and customers' own words
(names, survey comments, messages) shown escaped in the queue, the conversation and the
dashboard."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from markupsafe import escape

import crm_store.staff as staff_store
from bot.console import logins
from bot.console.app import HERE
from bot.console.logins import ADDRESS_ATTEMPTS, ADDRESS_WINDOW, SlidingWindow
from bot.console.sessions import COOKIE
from crm_store.audit import AuditEntry, list_audit_entries
from crm_store.customers import list_customers, update_customer
from crm_store.db import session_scope
from crm_store.masking import mask_name
from crm_store.models import StaffUser
from crm_store.staff import (
    MAX_FAILED_LOGINS,
    deactivate_staff_user,
    find_login_account,
    hash_password,
    lockout,
    record_login,
)
from crm_store.surveys import record_survey_response
from tests.bot.console.client import CSRF, PASSWORD, Browser
from tests.bot.console.conftest import (  # noqa: F401  (fixtures: by their names)
    Console,
    browsers_fixture,
    clock_fixture,
    console_fixture,
    crm_fixture,
    seeded_template_fixture,
)

REFUSED = "用户名或密码不正确"
NAME = '<script>alert("name")</script><img src=x onerror=alert(1)>'
COMMENT = '</script><script>alert("comment")</script><svg onload=alert(2)>'
THEME = "<b onmouseover=alert(3)>主题</b>"
MESSAGE = "<img src=x onerror=alert(4)>"
RAW = ("<script>alert", "<img src=x", "<svg onload", "<b onmouseover")
HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


# Helpers ----------------------------------------------------------------------------------


async def login_form(browser: Browser) -> None:
    """Fetch the login page: its cookie and CSRF token, as a browser does before posting."""
    _, page = await browser.get("/login")
    match = CSRF.search(page)
    assert match
    browser.csrf = match.group(1)


async def attempt(
    browser: Browser, username: str, password: str, **headers: str
) -> tuple[int, str, dict[str, str]]:
    """One login post with the page's token: status, body and headers of the answer."""
    form = {"username": username, "password": password, "csrf": browser.csrf}
    async with browser.http.post(
        browser.base + "/login", data=form, headers=headers, allow_redirects=False
    ) as answer:
        return answer.status, await answer.text(), dict(answer.headers)


def refused_page(body: str) -> str:
    """The error paragraph of a refused login."""
    match = re.search(r'<p class="error" role="alert">(.*?)</p>', body)
    assert match, body
    return match.group(1)


def account_row(console: Console, username: str) -> tuple[int, datetime | None, int]:
    with session_scope(console.crm) as session:
        row = session.query(StaffUser).filter_by(username=username).one()
        return row.failed_logins, row.locked_until, row.session_version


def login_audit(console: Console) -> list[AuditEntry]:
    with session_scope(console.crm) as session:
        return list_audit_entries(session, entity="staff_user", limit=500)


def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo password without argon2's cost, for the tests that need many attempts."""

    def check(password: str, stored: str | None) -> bool:
        return stored is not None and password == PASSWORD

    monkeypatch.setattr(logins, "check_password", check)


# Account lockout --------------------------------------------------------------------------


def test_the_lockout_doubles_from_a_minute_up_to_an_hour() -> None:
    assert [lockout(n) for n in range(MAX_FAILED_LOGINS)] == [None] * MAX_FAILED_LOGINS
    minutes = [lockout(n) for n in range(MAX_FAILED_LOGINS, MAX_FAILED_LOGINS + 9)]
    assert minutes == [timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 32, 60, 60, 60)]
    assert lockout(10_000) == timedelta(minutes=60)


async def test_five_wrong_passwords_lock_the_account_and_it_backs_off(
    console: Console, browsers: Any
) -> None:
    visitor = await browsers()
    await login_form(visitor)
    for _ in range(MAX_FAILED_LOGINS):
        assert (await attempt(visitor, "agent", "wrong-password"))[0] == 401
    failed, locked_until, _ = account_row(console, "agent")
    assert failed == 5 and locked_until == console.clock() + timedelta(minutes=1)

    status, body, _ = await attempt(visitor, "agent", PASSWORD)  # right, but locked
    assert (status, refused_page(body)) == (401, REFUSED)
    console.clock.advance(timedelta(seconds=61))
    assert (await attempt(visitor, "agent", "wrong-again!"))[0] == 401  # the 6th: 2 minutes
    assert account_row(console, "agent")[1] == console.clock() + timedelta(minutes=2)
    console.clock.advance(timedelta(seconds=61))
    assert (await attempt(visitor, "agent", PASSWORD))[0] == 401
    console.clock.advance(timedelta(seconds=60))
    assert (await attempt(visitor, "agent", PASSWORD))[0] == 303
    assert account_row(console, "agent")[:2] == (0, None)  # a correct login forgets

    reasons = [e.changes.get("reason") for e in login_audit(console) if e.action != "login"]
    assert reasons.count("locked") == 2 and reasons.count("password") == 6


async def test_locked_unknown_and_wrong_are_one_answer(console: Console, browsers: Any) -> None:
    """Nothing in the answer tells a locked account, a deactivated one, an unknown name and a
    wrong password apart (the same page, to the byte, from one login form)."""
    visitor = await browsers()
    await login_form(visitor)
    with session_scope(console.crm) as session:
        agent2 = console.staff_id("agent2")
        deactivate_staff_user(session, staff_id=agent2, actor="test", clock=console.clock)
    for _ in range(MAX_FAILED_LOGINS):
        await attempt(visitor, "supervisor", "wrong-password")
    answers = [
        await attempt(visitor, "nobody-here", "wrong-password"),
        await attempt(visitor, "agent", "wrong-password"),
        await attempt(visitor, "supervisor", PASSWORD),  # locked
        await attempt(visitor, "agent2", PASSWORD),  # deactivated
    ]
    assert {(status, body) for status, body, _ in answers} == {(401, answers[0][1])}
    assert refused_page(answers[0][1]) == REFUSED
    assert {frozenset(h) for _, _, h in answers} == {frozenset(answers[0][2])}
    entries = [e for e in login_audit(console) if e.action == "login_failed"][:4]
    assert [e.changes["reason"] for e in entries] == ["inactive", "locked", "password", "unknown"]
    assert entries[-1].entity_id == "nobody-here" and entries[0].actor == "anonymous"
    assert all(e.changes["address"] == "127.0.0.1" for e in entries)


async def test_concurrent_guesses_are_counted_one_after_another(
    console: Console, browsers: Any
) -> None:
    """Guesses sent at once are checked one at a time per username: the lock of the fifth
    stops the rest, rather than all of them being checked against an unlocked account."""
    visitor = await browsers()
    await login_form(visitor)
    answers = await asyncio.gather(
        *(attempt(visitor, "agent", f"wrong-password-{n}") for n in range(8))
    )
    assert {status for status, _, _ in answers} == {401}
    assert account_row(console, "agent")[0] == MAX_FAILED_LOGINS
    reasons = [e.changes["reason"] for e in login_audit(console) if e.action == "login_failed"]
    assert sorted(reasons) == ["locked"] * 3 + ["password"] * 5


def test_a_login_whose_account_changed_meanwhile_is_refused(console: Console) -> None:
    """Between the read and the write the password changed (or the account was locked or
    deactivated): the check that passed is stale, and the login is refused."""
    with session_scope(console.crm) as session:
        account = find_login_account(session, username="agent")
    assert account is not None
    with session_scope(console.crm) as session:
        row = session.get(StaffUser, account.member.id)
        row.password_hash = hash_password("another-password")
    with session_scope(console.crm) as session:
        member = record_login(
            session, account=account, new_hash=None, address="192.0.2.1", clock=console.clock
        )
    assert member is None
    assert login_audit(console)[0].changes == {"reason": "changed", "address": "192.0.2.1"}


# Timing: the slow check runs for every attempt, outside any transaction ---------------------


async def test_unknown_names_and_wrong_passwords_both_run_the_verifier(
    console: Console, browsers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spied, not timed: every refusal runs argon2id with today's parameters, so an unknown
    username costs what a wrong password costs; and no write lock is held meanwhile (the check
    would otherwise stall every other writer of the CRM)."""
    checked: list[tuple[str, bool]] = []
    real = staff_store.password_matches
    database = Path(str(console.crm.url.database))

    def spy(password: str, stored: str | None) -> bool:
        checked.append((parameters(stored), may_write(database)))
        return real(password, stored)

    monkeypatch.setattr(staff_store, "password_matches", spy)
    visitor = await browsers()
    await login_form(visitor)
    await attempt(visitor, "nobody-here", "wrong-password")
    await attempt(visitor, "agent", "wrong-password")
    assert (await attempt(visitor, "agent", PASSWORD))[0] == 303
    kinds = {kind for kind, _ in checked}
    assert len(checked) == 3 and len(kinds) == 1 and kinds.pop().startswith("$argon2id$")
    assert all(free for _, free in checked)


def parameters(stored: str | None) -> str:
    """An argon2 hash's algorithm and cost: `$argon2id$v=19$m=65536,t=3,p=4`."""
    return "$".join(str(stored).split("$")[:4])


def may_write(database: Path) -> bool:
    """Whether another connection can take SQLite's write lock at once (nobody holds it)."""
    other = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


# Per-address throttling -------------------------------------------------------------------


async def test_an_address_gets_429_after_its_failed_attempts(
    console: Console, browsers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ADDRESS_ATTEMPTS failures (over many names, so no account locks) within ADDRESS_WINDOW,
    then 429 with the same text, whatever the password and whatever X-Forwarded-For claims;
    successful logins do not count."""
    fast_passwords(monkeypatch)
    visitor = await browsers()
    await login_form(visitor)
    for n in range(ADDRESS_ATTEMPTS - 1):
        assert (await attempt(visitor, f"guess{n}", "wrong-password"))[0] == 401
    for _ in range(3):
        assert (await attempt(visitor, "agent", PASSWORD))[0] == 303
        await login_form(visitor)  # a login starts a new session, with a new token
    assert (await attempt(visitor, "guess-last", "wrong-password"))[0] == 401
    status, body, headers = await attempt(visitor, "agent", PASSWORD)
    assert (status, refused_page(body)) == (429, REFUSED)
    assert 0 < int(headers["Retry-After"]) <= ADDRESS_WINDOW.total_seconds()
    spoofed = await attempt(visitor, "agent", PASSWORD, **{"X-Forwarded-For": "203.0.113.9"})
    assert spoofed[0] == 429
    console.clock.advance(ADDRESS_WINDOW)
    assert (await attempt(visitor, "agent", PASSWORD))[0] == 303


def test_the_window_slides_per_address() -> None:
    window = SlidingWindow(2, timedelta(minutes=5))
    start = datetime(2026, 11, 21)
    assert window.take("a", start) and window.take("a", start + timedelta(minutes=1))
    assert not window.take("a", start + timedelta(minutes=2))
    assert window.take("b", start + timedelta(minutes=2))
    assert window.retry_after("a", start + timedelta(minutes=2)) == timedelta(minutes=3)
    assert window.take("a", start + timedelta(minutes=5))
    window.give_back("a", start + timedelta(minutes=5))
    assert window.take("a", start + timedelta(minutes=5, seconds=1))


# Sessions: logout voids the cookie --------------------------------------------------------


def cookie_of(browser: Browser) -> str:
    return next(c.value for c in browser.http.cookie_jar if c.key == COOKIE)


async def test_logout_voids_a_replayed_cookie(console: Console, browsers: Any) -> None:
    agent, elsewhere = await browsers("agent"), await browsers("agent")
    stolen = cookie_of(agent)
    status, _, location = await agent.post("/logout")
    assert (status, location) == (303, "/login")
    replay = await browsers()
    replay.http.cookie_jar.update_cookies({COOKIE: stolen})
    assert (await replay.get("/queue"))[0] == 302
    assert (await replay.get("/api/queue"))[0] == 401
    assert (await replay.post("/handoffs/1/claim", {"csrf": agent.csrf}, csrf=False))[0] == 401
    assert (await elsewhere.get("/queue"))[0] == 302  # every session of the account ends
    assert account_row(console, "agent")[2] == 1
    again = await browsers("agent")
    assert (await again.get("/queue"))[0] == 200


async def test_the_cookie_is_httponly_lax_and_secure_behind_https(
    console: Console, browsers: Any
) -> None:
    visitor = await browsers()
    async with visitor.http.get(visitor.base + "/login") as answer:
        cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
        assert "Strict-Transport-Security" not in answer.headers
    console.app.ctx.config = replace(console.app.ctx.config, secure_cookies=True)
    async with visitor.http.get(visitor.base + "/login") as answer:
        assert "Secure" in answer.headers["Set-Cookie"]
        assert answer.headers["Strict-Transport-Security"].startswith("max-age=")


# CSRF -------------------------------------------------------------------------------------


async def test_posts_need_the_token_and_the_same_origin(console: Console, browsers: Any) -> None:
    handoff = console.waiting("web-csrf-site")
    agent = await browsers("agent")
    claim = f"{agent.base}/handoffs/{handoff.id}/claim"
    assert (await agent.post(f"/handoffs/{handoff.id}/claim", csrf=False))[0] == 403
    for site in ("cross-site", "same-site"):
        headers = {"Sec-Fetch-Site": site, "Origin": "https://evil.example"}
        form = {"csrf": agent.csrf}
        async with agent.http.post(claim, data=form, headers=headers) as answer:
            assert answer.status == 403, site
    assert console.rasa.appended == []
    same = {"Sec-Fetch-Site": "same-origin"}
    async with agent.http.post(
        claim, data={"csrf": agent.csrf}, headers=same, allow_redirects=False
    ) as answer:
        assert answer.status == 303


async def test_a_login_from_another_site_is_refused(browsers: Any) -> None:
    visitor = await browsers()
    await login_form(visitor)
    status, _, _ = await attempt(visitor, "agent", PASSWORD, **{"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    assert (await attempt(visitor, "agent", PASSWORD))[0] == 303


# Headers ----------------------------------------------------------------------------------


async def test_every_response_carries_the_security_headers(browsers: Any) -> None:
    anonymous, agent, manager = await browsers(), await browsers("agent"), await browsers("manager")
    answers = [
        (anonymous, "/login"),
        (anonymous, "/health"),
        (anonymous, "/queue"),  # a redirect
        (anonymous, "/api/queue"),  # 401 JSON
        (anonymous, "/no-such-page"),  # Sanic's 404
        (anonymous, "/static/console.js"),
        (agent, "/queue"),
        (agent, "/api/queue"),
        (agent, "/dashboard"),  # 403 page
        (manager, "/dashboard/bot"),
        (manager, "/api/dashboard/bot"),
        (manager, "/dashboard/assets/echarts.min.js"),
    ]
    for browser, path in answers:
        async with browser.http.get(browser.base + path, allow_redirects=False) as answer:
            await answer.read()
            assert_secure_headers(answer, path)


def assert_secure_headers(answer: aiohttp.ClientResponse, path: str) -> None:
    for name, value in HEADERS.items():
        assert answer.headers.get(name) == value, (path, name)
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy, path
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
    cached = path.startswith(("/static/", "/dashboard/assets/"))
    assert (answer.headers.get("Cache-Control") == "no-store") != cached, path


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>")
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=|\sstyle\s*=|javascript:", re.I)


async def test_the_pages_run_no_inline_script_or_style(console: Console, browsers: Any) -> None:
    """What the policy forbids, the templates do not need: every page as served, and every
    template's source."""
    handoff = console.waiting("web-inline")
    agent, manager, visitor = await browsers("agent"), await browsers("manager"), await browsers()
    pages = [await visitor.get("/login")]
    pages += [await agent.get(p) for p in ("/queue", "/live", f"/handoffs/{handoff.id}")]
    pages += [await manager.get(f"/dashboard/{view}") for view in ("surveys", "bot")]
    sources = [path.read_text() for path in (HERE / "templates").glob("*.html")]
    for text in [page for _, page in pages] + sources:
        assert not INLINE_SCRIPT.search(text) and not INLINE_HANDLER.search(text)


# XSS --------------------------------------------------------------------------------------


def a_customer_named(console: Console, name: str) -> int:
    with session_scope(console.crm) as session:
        customer = list_customers(session, limit=1)[0]
        update_customer(session, customer_id=customer.id, actor="test", name=name)
        return customer.id


def assert_escaped(page: str, *texts: str) -> None:
    """Each text is in the page as Jinja escapes it, and no tag of the payloads is."""
    for raw in RAW:
        assert raw not in page, raw
    for text in texts:
        assert str(escape(text)) in page, text


async def test_a_customer_name_is_escaped_in_the_queue_and_the_card(
    console: Console, browsers: Any
) -> None:
    customer_id = a_customer_named(console, NAME)
    handoff = console.waiting("web-xss", customer_id=customer_id)
    supervisor = await browsers("supervisor")
    shown = mask_name(NAME)  # staff see names masked (docs/personal-data.md)
    _, queue = await supervisor.get("/queue")
    assert_escaped(queue, shown)
    _, conversation = await supervisor.get(f"/handoffs/{handoff.id}")
    assert_escaped(conversation, shown)
    state = await supervisor.api("/api/queue")
    assert state["waiting"][0]["customer"] == shown  # data as JSON, for textContent only


async def test_a_message_in_the_transcript_is_data_for_text_content(
    console: Console, browsers: Any
) -> None:
    handoff = console.waiting("web-xss-message")
    console.rasa.trackers["web-xss-message"] = [{"event": "user", "text": MESSAGE}]
    agent = await browsers("agent")
    path = f"{agent.base}/api/handoffs/{handoff.id}/transcript"
    async with agent.http.get(path) as answer:
        assert answer.headers["Content-Type"].startswith("application/json")
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert (await answer.json())["lines"][0]["text"] == MESSAGE
    script = (HERE / "static" / "console.js").read_text()
    assert "textContent" in script and "innerHTML" not in script
    assert "createTextNode(line.text)" in script


async def test_a_survey_comment_is_escaped_on_the_dashboard(
    console: Console, browsers: Any
) -> None:
    customer_id = a_customer_named(console, NAME)
    with session_scope(console.crm) as session:
        record_survey_response(
            session,
            conversation_id="web-xss-survey",
            trigger="after_handoff",
            channel="web",
            csat=1,
            comment=COMMENT,
            themes=[THEME],
            polarity="negative",
            customer_id=customer_id,
            clock=console.clock,
        )
    manager = await browsers("manager")
    status, page = await manager.get("/dashboard/surveys")
    assert status == 200
    assert_escaped(page, COMMENT, THEME)
    chart_data = page.split('id="chart-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in chart_data and "\\u003cb onmouseover" in chart_data
    script = (HERE / "static" / "dashboard.js").read_text()
    assert 'renderMode: "richText"' in script and "innerHTML" not in script
