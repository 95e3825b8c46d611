"""The WeChat channel's blueprint served by a real Sanic app on loopback, with a stub bot;
and the pushes, signatures and channel settings the webhook tests share."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from bot.channels.wechat import crypto
from bot.channels.wechat.channel import WeChatConfig, WeChatInput
from crm_store.clock import Clock, utcnow
from tests.bot.channels.fake_wechat import APP_ID, APP_SECRET, FakeWeChat

_app_numbers = itertools.count()


@dataclass
class StubBot:
    """Answers each message with `replies` after `delay` seconds, recording what it heard."""

    replies: list[dict[str, Any]] = field(default_factory=lambda: [{"text": "您好"}])
    delay: float = 0.0
    heard: list[UserMessage] = field(default_factory=list)

    async def __call__(self, message: UserMessage) -> None:
        self.heard.append(message)
        await asyncio.sleep(self.delay)
        for reply in self.replies:
            await message.output_channel.send_response(message.sender_id, dict(reply))


@asynccontextmanager
async def serve(channel: WeChatInput, bot: StubBot, app: Sanic | None = None) -> AsyncIterator[str]:
    """The URL of the channel's webhook on a fresh Sanic app (or on `app`, e.g. Rasa's own)."""
    # Sanic 21.12 rewrites its request handler once per process unless in test mode, so a second
    # app started in the same process fails with KeyError('handle_request').
    Sanic.test_mode = True
    if app is None:
        app = Sanic(f"wechat_test_{next(_app_numbers)}")
        app.ctx.agent = SimpleNamespace(handle_message=bot)  # what Rasa's handler calls
    register([channel], app, route="/webhooks/")  # mounted exactly as `rasa run` does
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    assert server is not None
    await server.startup()
    try:
        yield f"http://127.0.0.1:{port}/webhooks/wechat/webhook"
    finally:
        server.close()
        await server.wait_closed()


TOKEN = "AAAAA"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


def push(content: str = "查订单", msg_id: str = "1001", msg_type: str = "text") -> bytes:
    return (
        "<xml><ToUserName><![CDATA[gh_care]]></ToUserName>"
        "<FromUserName><![CDATA[oUSER]]></FromUserName><CreateTime>1714037059</CreateTime>"
        f"<MsgType><![CDATA[{msg_type}]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    ).encode()


def event(name: str, key: str = "", create_time: int = 1714037060) -> bytes:
    return (
        "<xml><ToUserName>gh_care</ToUserName><FromUserName>oUSER</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType>event</MsgType>"
        f"<Event>{name}</Event><EventKey>{key}</EventKey></xml>"
    ).encode()


def signed_query(
    *extra: str, timestamp: int | None = None, nonce: str | None = None
) -> dict[str, str]:
    """A push's query string, signed with our token at `timestamp` (default: now), with a fresh
    random nonce unless one is given (as WeChat does: a nonce signs one push)."""
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = str(secrets.randbelow(10**10)) if nonce is None else nonce
    query = {"timestamp": timestamp, "nonce": nonce}
    query["signature"] = crypto.signature(TOKEN, timestamp, nonce)
    if extra:
        query["msg_signature"] = crypto.signature(TOKEN, timestamp, nonce, *extra)
        query["encrypt_type"] = "aes"
    return query


@dataclass
class Rig:
    url: str
    bot: StubBot
    fake: FakeWeChat
    channel: WeChatInput
    http: aiohttp.ClientSession

    async def post(self, body: bytes, query: dict[str, str] | None = None) -> tuple[int, str]:
        params = signed_query() if query is None else query
        async with self.http.post(self.url, params=params, data=body) as reply:
            return reply.status, await reply.text()

    async def cs_texts(self, count: int) -> list[str]:
        for _ in range(250):
            if len(self.fake.sent) >= count:
                break
            await asyncio.sleep(0.02)
        return [item["text"]["content"] for item in self.fake.sent]


def make_channel(base_url: str, clock: Clock = utcnow, **extra: Any) -> WeChatInput:
    credentials = {
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "token": TOKEN,
        "api_base_url": base_url,
        "menu": {"ORDER": "/order_status"},
        "domain_path": "/nonexistent/domain.yml",
        "passive_deadline": 0.5,
        "allow_plain_mode": True,  # most tests post plain pushes; safe mode adds aes_key
        **extra,
    }
    return WeChatInput(WeChatConfig.from_credentials(credentials), clock)
