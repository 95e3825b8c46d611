"""The staff console's Sanic app: its own process (`carebot console`, started by `carebot run`).

`create_app` takes everything it talks to (CRM engine, Rasa API, clock), so tests build one on a
test database with a stub Rasa. A background task tells customers nobody has picked up yet.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sanic import Request, Sanic, response
from sanic.response import HTTPResponse

from bot.console.admin import admin_pages
from bot.console.auth import AGENTS, MANAGERS, SUPERVISORS, auth, current_session
from bot.console.config import ConsoleConfig
from bot.console.dashboard import dashboard_blueprint
from bot.console.desk import Desk
from bot.console.rasa_api import Rasa, RasaApi
from bot.console.views import desk_pages
from crm_store.db import make_engine

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
REASONS = {
    "customer_request": "客户要求",
    "complaint": "投诉",
    "fallback": "机器人未理解",
    "detractor": "差评回访",
    "agent_initiated": "客服主动接入",
}
CHANNELS = {"webchat": "网页", "wechat": "微信", "rest": "接口"}
ORDER_STATUSES = {
    "pending": "待付款",
    "paid": "已付款",
    "shipped": "已发货",
    "delivered": "已签收",
    "completed": "已完成",
    "cancelled": "已取消",
    "refunded": "已退款",
}
TICKET_KINDS = {"complaint": "投诉", "return": "退换货", "refund": "退款", "message": "留言"}
STAFF_ZONE = ZoneInfo("Asia/Shanghai")


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
    )
    env.globals |= {
        "REASONS": REASONS,
        "CHANNELS": CHANNELS,
        "ORDER_STATUSES": ORDER_STATUSES,
        "TICKET_KINDS": TICKET_KINDS,
        "AGENTS": AGENTS,
        "SUPERVISORS": SUPERVISORS,
        "MANAGERS": MANAGERS,
    }
    env.filters["local"] = local_time
    return env


def local_time(moment: datetime | None) -> str:
    """A CRM time as staff read it (China time)."""
    return moment.astimezone(STAFF_ZONE).strftime("%m-%d %H:%M") if moment else ""


def create_app(
    config: ConsoleConfig, rasa: Rasa | None = None, name: str = "carebot_console", **desk: Any
) -> Sanic:
    app = Sanic(name)
    app.config.RESPONSE_TIMEOUT = 30
    env = templates()
    app.ctx.config = config
    app.ctx.desk = Desk(
        make_engine(config.database_url),
        rasa or RasaApi(config.rasa_url, config.api_token),
        config.domain_path,
        **desk,
    )

    def render(request: Request, template: str, status: int = 200, **values: Any) -> HTTPResponse:
        session = values.pop("session", current_session(request))
        page = env.get_template(template).render(session=session, **values)
        return response.html(page, status=status)

    app.ctx.render = render
    app.static("/static", str(HERE / "static"), name="console_static")
    for blueprint in (auth, desk_pages, admin_pages, dashboard_blueprint()):
        app.blueprint(blueprint)
    app.add_route(health, "/health")
    app.register_listener(start_timeouts, "after_server_start")
    app.register_listener(stop_timeouts, "before_server_stop")
    return app


async def health(request: Request) -> HTTPResponse:
    return response.json({"status": "ok"})


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
