"""A fake WeChat API server on loopback, answering as the fact sheet says WeChat does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

APP_ID, APP_SECRET = "wx_test_app", "test-secret"


@dataclass
class FakeWeChat:
    """Issues tokens, records CS and template sends, answers with errcodes queued by a test."""

    token_fetches: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    used_tokens: list[str] = field(default_factory=list)
    errcodes: list[int] = field(default_factory=list)
    templates: list[dict[str, Any]] = field(default_factory=list)
    template_errcodes: list[int] = field(default_factory=list)
    expires_in: int = 7200

    @property
    def current_token(self) -> str:
        return f"TOKEN{self.token_fetches}"

    async def token(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("appid") != APP_ID or query.get("secret") != APP_SECRET:
            return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
        self.token_fetches += 1
        return web.json_response(
            {"access_token": self.current_token, "expires_in": self.expires_in}
        )

    async def custom_send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        self.used_tokens.append(token)
        if token != self.current_token:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        if self.errcodes:
            return web.json_response({"errcode": self.errcodes.pop(0), "errmsg": "queued"})
        self.sent.append(json.loads(await request.read()))
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def template_send(self, request: web.Request) -> web.Response:
        if request.query.get("access_token", "") != self.current_token:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        if self.template_errcodes:
            errcode = self.template_errcodes.pop(0)
            return web.json_response({"errcode": errcode, "errmsg": "queued"})
        self.templates.append(json.loads(await request.read()))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": len(self.templates)})


@asynccontextmanager
async def fake_wechat() -> AsyncIterator[tuple[FakeWeChat, str]]:
    """The fake and its base URL."""
    fake = FakeWeChat()
    app = web.Application()
    app.router.add_get("/cgi-bin/token", fake.token)
    app.router.add_post("/cgi-bin/message/custom/send", fake.custom_send)
    app.router.add_post("/cgi-bin/message/template/send", fake.template_send)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
