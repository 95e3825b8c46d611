"""The simulator on aiohttp's test server, and a stub bot webhook it pushes to."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.channels.wechat import crypto
from bot.channels.wechat.messages import parse_fields
from bot.wechat_sim.app import SIMULATOR, build_app
from bot.wechat_sim.config import SimConfig
from bot.wechat_sim.simulator import Simulator
from bot.wechat_sim.state import SimClock

APP_ID, APP_SECRET, TOKEN = "wx_sim_test", "sim-secret", "simtoken"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
NOW = 1_763_800_000.0  # a fixed wall time: only the simulated offset moves


def config(**overrides: Any) -> SimConfig:
    base = SimConfig(APP_ID, APP_SECRET, TOKEN, webhook_url="http://127.0.0.1:9/unused")
    return dataclasses.replace(base, **overrides)


def fixed_clock() -> SimClock:
    return SimClock(source=lambda: NOW)


@dataclass
class Sim:
    url: str
    simulator: Simulator
    http: aiohttp.ClientSession

    @property
    def clock(self) -> SimClock:
        return self.simulator.clock

    async def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.post(self.url + path, json=body) as answer:
            return answer.status, await answer.json(content_type=None)

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.url + path) as answer:
            return answer.status, await answer.json(content_type=None)


@asynccontextmanager
async def running_sim(
    sim_config: SimConfig, clock: SimClock | None = None, port: int | None = None
) -> AsyncIterator[Sim]:
    app = build_app(sim_config, clock or fixed_clock())
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Sim(str(server.make_url("")).rstrip("/"), app[SIMULATOR], http)
    finally:
        await server.close()


Answer = Callable[[dict[str, str]], str]


@dataclass
class StubWebhook:
    """Records each push (query, body, opened message) and answers after `delays[attempt]`."""

    answer: Answer = lambda message: "success"
    delays: list[float] = field(default_factory=list)
    aes_key: str | None = None
    pushes: list[dict[str, Any]] = field(default_factory=list)
    echo: bool = True

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        message = self.open(dict(request.query), body)
        self.pushes.append({"query": dict(request.query), "body": body, "message": message})
        delay = self.delays[len(self.pushes) - 1] if len(self.pushes) <= len(self.delays) else 0
        await asyncio.sleep(delay)
        return web.Response(text=self.answer(message), content_type="text/xml")

    async def verify(self, request: web.Request) -> web.Response:
        """The URL check: echo `echostr` when the signature is ours (or, `echo` off, never)."""
        query = request.query
        parts = (TOKEN, query["timestamp"], query["nonce"])
        signed = crypto.check_signature(query["signature"], *parts)
        return web.Response(text=query["echostr"] if signed and self.echo else "no")

    def open(self, query: dict[str, str], body: bytes) -> dict[str, str]:
        """The push's message, after checking its signatures as the bot does."""
        parts = (TOKEN, query["timestamp"], query["nonce"])
        assert crypto.check_signature(query["signature"], *parts)
        if self.aes_key is None:
            return parse_fields(body)
        encrypted = parse_fields(body)["Encrypt"]
        assert crypto.check_signature(query["msg_signature"], *parts, encrypted)
        plain = crypto.decrypt(crypto.aes_key(self.aes_key), encrypted, APP_ID)
        return parse_fields(plain.encode())


@asynccontextmanager
async def running_webhook(stub: StubWebhook) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/webhooks/wechat/webhook", stub.handle)
    app.router.add_get("/webhooks/wechat/webhook", stub.verify)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/webhooks/wechat/webhook"))
    finally:
        await server.close()
