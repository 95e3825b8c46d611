"""The staff console's Sanic app: its own process (`carebot console`, started by `carebot run`).

`create_app` takes everything it talks to (CRM engine, Rasa API, clock), so tests build one on a
test database with a stub Rasa. A background task tells customers nobody has picked up yet.
Every response carries the security headers below (docs/security.md): the pages run only the
console's own scripts and styles (no inline script, no inline style), may not be framed, and
pages and JSON with customer data are not cached.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Request, Sanic, response
from sanic.response import BaseHTTPResponse, HTTPResponse

from bot import metrics
from bot.console.admin import admin_pages
from bot.console.auth import AGENTS, MANAGERS, SUPERVISORS, auth
from bot.console.campaigns import campaign_pages
from bot.console.config import ConsoleConfig
from bot.console.conversation import Rasa, RasaConversations
from bot.console.dashboard import ECHARTS_PATH, dashboard_blueprint
from bot.console.desk import Desk
from bot.console.labels import HANDOFF_REASONS, ORDER_STATUSES, RASA_CHANNELS, TICKET_KINDS
from bot.console.logins import Logins
from bot.console.views import desk_pages
from bot.log_format import sanic_log_config
from bot.rasa_api import RasaApi
from crm_store.clock import BUSINESS_TZ
from crm_store.db import make_engine
from crm_store.masking import alias, mask_email, mask_name, mask_phone, mask_text
from crm_store.staff import dummy_password_hash

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",  # console.js, dashboard.js, echarts: files, never inline
        "style-src 'self'",  # the dashboard's tooltips are drawn on the canvas, not in HTML
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
HSTS = "max-age=15552000"  # 180 days, sent when the console is behind HTTPS (secure cookies)


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
    )
    env.globals |= {
        "REASONS": HANDOFF_REASONS,
        "RASA_CHANNELS": RASA_CHANNELS,
        "ORDER_STATUSES": ORDER_STATUSES,
        "TICKET_KINDS": TICKET_KINDS,
        "AGENTS": AGENTS,
        "SUPERVISORS": SUPERVISORS,
        "MANAGERS": MANAGERS,
    }
    env.filters["local"] = local_time
    # Personal data masked by default (docs/personal-data.md): conversation ids as aliases
    # (a web session id would log its holder in), phones and names masked.
    env.filters["alias"] = alias
    env.filters["masked"] = mask_text
    env.filters["masked_phone"] = mask_phone
    env.filters["masked_name"] = mask_name
    env.filters["masked_email"] = mask_email
    return env


def local_time(moment: datetime | None) -> str:
    """A CRM time as staff read it (in the business time zone)."""
    return moment.astimezone(BUSINESS_TZ).strftime("%m-%d %H:%M") if moment else ""


def create_app(
    config: ConsoleConfig, rasa: Rasa | None = None, name: str = "carebot_console", **desk: Any
) -> Sanic:
    app = Sanic(name, log_config=sanic_log_config())
    app.config.RESPONSE_TIMEOUT = 30
    env = templates()
    app.ctx.config = config
    app.ctx.desk = Desk(
        make_engine(config.database_url),
        rasa or RasaConversations(RasaApi(config.rasa_url, config.api_token)),
        config.domain_path,
        **desk,
    )

    def render(request: Request, template: str, status: int = 200, **values: Any) -> HTTPResponse:
        """A page; its menu shows only once the guard has checked the session against the CRM."""
        session = values.pop("session", getattr(request.ctx, "session", None))
        page = env.get_template(template).render(session=session, **values)
        return response.html(page, status=status)

    app.ctx.render = render
    app.ctx.logins = Logins()
    dummy_password_hash()  # made now, so the first unknown username costs no more than others
    app.register_middleware(add_security_headers, "response")
    app.static("/static", str(HERE / "static"), name="console_static")
    for blueprint in (auth, desk_pages, admin_pages, campaign_pages, dashboard_blueprint()):
        app.blueprint(blueprint)
    app.add_route(health, "/health")
    app.add_route(serve_metrics, "/metrics")  # process metrics, no personal data (docs/deploy.md)
    app.register_listener(start_timeouts, "after_server_start")
    app.register_listener(stop_timeouts, "before_server_stop")
    return app


def add_security_headers(request: Request, reply: BaseHTTPResponse) -> None:
    """On every response, pages, JSON, files and errors alike."""
    for name, value in SECURITY_HEADERS.items():
        reply.headers.setdefault(name, value)
    if request.app.ctx.config.secure_cookies:
        reply.headers.setdefault("Strict-Transport-Security", HSTS)
    if not is_asset(request.path):
        reply.headers.setdefault("Cache-Control", "no-store")


def is_asset(path: str) -> bool:
    """The console's own scripts and styles, and the chart library: the same for everyone."""
    return path.startswith("/static/") or path == ECHARTS_PATH


async def health(request: Request) -> HTTPResponse:
    return response.json({"status": "ok"})


async def serve_metrics(request: Request) -> HTTPResponse:
    body, content_type = metrics.page()
    return response.raw(body, content_type=content_type)


async def start_timeouts(app: Sanic, loop: Any) -> None:
    app.ctx.timeouts = loop.create_task(watch_timeouts(app))


async def stop_timeouts(app: Sanic, loop: Any) -> None:
    app.ctx.timeouts.cancel()


async def watch_timeouts(app: Sanic) -> None:
    """Every few seconds: tell customers whom nobody has picked up in time (docs/handoff.md)."""
    config: ConsoleConfig = app.ctx.config
    while True:
        try:
            await app.ctx.desk.tell_timeouts(config.handoff_wait)
        except Exception as error:  # keep watching: one failed round must not stop the next
            log.warning("handoff timeouts: %s", error)
        await asyncio.sleep(config.timeout_check_s)


def serve(config: ConsoleConfig, host: str, port: int) -> None:
    create_app(config).run(host=host, port=port, access_log=False, workers=1)
