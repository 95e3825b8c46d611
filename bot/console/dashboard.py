"""The manager dashboard's place in the console (issue 9 fills it in).

`dashboard_blueprint()` is registered by bot/console/app.py behind the manager role; the nav
shows "数据看板" to managers. Replace the page here, keep the guard.
"""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from bot.console.auth import MANAGERS, staff


def dashboard_blueprint() -> Blueprint:
    blueprint = Blueprint("console_dashboard")

    @blueprint.get("/dashboard")
    @staff(*MANAGERS)
    async def dashboard(request: Request) -> HTTPResponse:
        return request.app.ctx.render(request, "dashboard.html")

    return blueprint
