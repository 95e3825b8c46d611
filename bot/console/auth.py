"""Login, logout and the guard on every other route: a signed session, a role, a CSRF token.

Refusals: no session → a page redirects to /login, an API or form post gets 401; a role that
may not use the route → 403; a POST without the session's CSRF token → 403.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import timedelta
from functools import wraps
from typing import Any

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse

from bot.console.desk import Agent
from bot.console.sessions import (
    COOKIE,
    ConsoleSession,
    csrf_matches,
    new_session,
    sign,
    verify,
)
from crm_store.audit import record_audit
from crm_store.errors import NotFound
from crm_store.staff import StaffMember, authenticate_staff, get_staff_user

AGENTS = ("agent", "supervisor", "admin")
SUPERVISORS = ("supervisor", "admin")
MANAGERS = ("manager", "admin")
HOME_BY_ROLE = {"manager": "/dashboard"}
LOGIN_LIFETIME = timedelta(hours=1)

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
            if member.role not in roles:
                return refusal(request, 403, "您的角色无权访问此页面")
            if request.method == "POST" and not csrf_matches(session, posted_csrf(request)):
                return refusal(request, 403, "表单已过期，请刷新页面后重试")
            request.ctx.session = session
            request.ctx.agent = Agent(member.id, member.display_name, member.role)
            return await handler(request, *args, **kwargs)

        return guarded

    return decorate


async def active_member(request: Request, session: ConsoleSession | None) -> StaffMember | None:
    """The session's staff member as the CRM has them now: a deactivated account is logged
    out and a changed role applies at once, whatever the cookie says."""
    if session is None or session.staff_id is None:
        return None
    staff_id = session.staff_id
    try:
        member = await request.app.ctx.desk.db(lambda s: get_staff_user(s, staff_id=staff_id))
    except NotFound:
        return None
    return member if member.active else None


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
    if not csrf_matches(pending, posted_csrf(request)):
        return refusal(request, 403, "表单已过期，请刷新页面后重试")
    form = request.form or {}
    username, password = str(form.get("username") or ""), str(form.get("password") or "")
    desk = request.app.ctx.desk
    member = await desk.db(lambda s: _login(s, username, password, request.app.ctx.desk.clock))
    if member is None:
        page = request.app.ctx.render(
            request,
            "login.html",
            status=401,
            csrf=pending.csrf if pending else "",
            error="用户名或密码不正确",
            session=None,
        )
        return page
    lifetime = timedelta(hours=request.app.ctx.config.session_hours)
    session = new_session(desk.clock(), lifetime, member.id, member.role, member.display_name)
    home = HOME_BY_ROLE.get(member.role, "/queue")
    return set_session(request, response.redirect(home, status=303), session)


def _login(session: Any, username: str, password: str, clock: Any) -> Any:
    member = authenticate_staff(session, username=username, password=password)
    record_audit(
        session,
        actor=f"staff:{member.id}" if member else "anonymous",
        action="login" if member else "login_failed",
        entity="staff_user",
        entity_id=member.id if member else username[:64] or "-",
        clock=clock,
    )
    return member


@auth.post("/logout")
@staff(*AGENTS, *MANAGERS)
async def logout(request: Request) -> HTTPResponse:
    agent = request.ctx.agent
    await request.app.ctx.desk.db(
        lambda s: record_audit(
            s,
            actor=f"staff:{agent.id}",
            action="logout",
            entity="staff_user",
            entity_id=agent.id,
            clock=request.app.ctx.desk.clock,
        )
    )
    reply = response.redirect("/login", status=303)
    del reply.cookies[COOKIE]
    return reply
