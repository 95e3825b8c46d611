"""Login, logout and the guard on every other route: a signed session, a role, a CSRF token.

Refusals: no session (or one logged out since: its version is behind the account's) → a page
redirects to /login, an API or form post gets 401; a role that may not use the route → 403; a
POST without the session's CSRF token, or one the browser says comes from another site → 403.
A refused login always reads 用户名或密码不正确 (401; 429 once the address is throttled):
throttling and lockout are in bot/console/logins.py.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import timedelta
from functools import wraps
from typing import Any

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from bot.console.desk import Agent
from bot.console.logins import Outcome, client_address
from bot.console.sessions import (
    COOKIE,
    ConsoleSession,
    csrf_matches,
    new_session,
    sign,
    verify,
)
from crm_store.errors import NotFound
from crm_store.staff import StaffMember, end_staff_sessions, get_staff_user

AGENTS = ("agent", "supervisor", "admin")
SUPERVISORS = ("supervisor", "admin")
MANAGERS = ("manager", "admin")
HOME_BY_ROLE = {"manager": "/dashboard"}
LOGIN_LIFETIME = timedelta(hours=1)
LOGIN_REFUSED = "用户名或密码不正确"  # the one answer to every refused login
FORM_EXPIRED = "表单已过期，请刷新页面后重试"
SAME_ORIGIN = ("same-origin", "none")  # Sec-Fetch-Site values a post may carry

Handler = Callable[..., Coroutine[Any, Any, HTTPResponse]]

auth = Blueprint("console_auth")


def current_session(request: Request) -> ConsoleSession | None:
    app = request.app.ctx
    return verify(request.cookies.get(COOKIE), app.config.secret, app.desk.clock())


def set_session(request: Request, reply: HTTPResponse, session: ConsoleSession) -> HTTPResponse:
    reply.cookies[COOKIE] = sign(session, request.app.ctx.config.secret)
    reply.cookies[COOKIE]["httponly"] = True
    reply.cookies[COOKIE]["samesite"] = "Lax"
    reply.cookies[COOKIE]["path"] = "/"
    reply.cookies[COOKIE]["secure"] = request.app.ctx.config.secure_cookies
    return reply


def posted_csrf(request: Request) -> str | None:
    header = request.headers.get("x-csrf-token")
    if header:
        return str(header)
    form = request.form or {}
    return form.get("csrf")


def cross_site(request: Request) -> bool:
    """The browser says this request comes from another site (Sec-Fetch-Site): a post is refused
    even with a valid token. Browsers without the header rely on the token and SameSite=Lax."""
    return str(request.headers.get("sec-fetch-site", "same-origin")) not in SAME_ORIGIN


def forged_post(request: Request, session: ConsoleSession | None) -> bool:
    return cross_site(request) or not csrf_matches(session, posted_csrf(request))


def from_script(request: Request) -> bool:
    """The page's own scripts (the JSON API, posts with the CSRF header) get JSON answers."""
    return request.path.startswith("/api/") or bool(request.headers.get("x-csrf-token"))


def wants_page(request: Request) -> bool:
    return request.method == "GET" and not from_script(request)


def staff(*roles: str) -> Callable[[Handler], Handler]:
    """Only a logged-in staff member with one of `roles`; POSTs need the CSRF token too."""

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            session = current_session(request)
            member = await active_member(request, session)
            if session is None or member is None:
                if wants_page(request):
                    return response.redirect("/login")
                return refusal(request, 401, "请先登录")
            request.ctx.session = session  # pages show the menu from here on
            if member.role not in roles:
                return refusal(request, 403, "您的角色无权访问此页面")
            if request.method == "POST" and forged_post(request, session):
                return refusal(request, 403, FORM_EXPIRED)
            request.ctx.agent = Agent(member.id, member.display_name, member.role)
            return await handler(request, *args, **kwargs)

        return guarded

    return decorate


async def active_member(request: Request, session: ConsoleSession | None) -> StaffMember | None:
    """The session's staff member as the CRM has them now: a deactivated account is logged
    out, a cookie from before a logout is void and a changed role applies at once, whatever the
    cookie says."""
    if session is None or session.staff_id is None:
        return None
    staff_id = session.staff_id
    try:
        member = await request.app.ctx.desk.db(lambda s: get_staff_user(s, staff_id=staff_id))
    except NotFound:
        return None
    return member if member.active and member.session_version == session.version else None


def refusal(request: Request, status: int, message: str) -> HTTPResponse:
    if not from_script(request):
        return request.app.ctx.render(request, "error.html", status=status, message=message)
    return response.json({"error": message}, status=status)


@auth.get("/login")
async def login_page(request: Request) -> HTTPResponse:
    session = current_session(request)
    if session is None:
        session = new_session(request.app.ctx.desk.clock(), LOGIN_LIFETIME)
    page = request.app.ctx.render(request, "login.html", csrf=session.csrf, session=None)
    return set_session(request, page, session)


@auth.post("/login")
async def login(request: Request) -> HTTPResponse:
    pending = current_session(request)
    if forged_post(request, pending):
        return refusal(request, 403, FORM_EXPIRED)
    form = request.form or {}
    username, password = str(form.get("username") or ""), str(form.get("password") or "")
    ctx = request.app.ctx
    outcome = await ctx.logins.attempt(ctx.desk, client_address(request), username, password)
    member = outcome.member
    if member is None:
        return login_refused(request, pending, outcome)
    lifetime = timedelta(hours=ctx.config.session_hours)
    session = new_session(
        ctx.desk.clock(),
        lifetime,
        member.id,
        member.role,
        member.display_name,
        member.session_version,
    )
    home = HOME_BY_ROLE.get(member.role, "/queue")
    return set_session(request, response.redirect(home, status=303), session)


def login_refused(
    request: Request, pending: ConsoleSession | None, outcome: Outcome
) -> HTTPResponse:
    """The login page again with the one refusal text; 429 and Retry-After when throttled."""
    page = request.app.ctx.render(
        request,
        "login.html",
        status=429 if outcome.throttled else 401,
        csrf=pending.csrf if pending else "",
        error=LOGIN_REFUSED,
        session=None,
    )
    if outcome.retry_after is not None:
        page.headers["Retry-After"] = str(max(1, round(outcome.retry_after.total_seconds())))
    return page


@auth.post("/logout")
@staff(*AGENTS, *MANAGERS)
async def logout(request: Request) -> HTTPResponse:
    """Bumps the account's session version: this cookie, and any copy of it, is void."""
    agent, desk = request.ctx.agent, request.app.ctx.desk
    await desk.db(
        lambda s: end_staff_sessions(
            s, staff_id=agent.id, actor=f"staff:{agent.id}", clock=desk.clock
        )
    )
    reply = response.redirect("/login", status=303)
    del reply.cookies[COOKIE]
    return reply
