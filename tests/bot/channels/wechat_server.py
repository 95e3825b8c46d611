"""The WeChat channel's blueprint served by a real Sanic app on loopback, with a stub bot."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from bot.channels.wechat.channel import WeChatInput

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
async def serve(channel: WeChatInput, bot: StubBot) -> AsyncIterator[str]:
    """The URL of the channel's webhook on a fresh Sanic app."""
    # Sanic 21.12 rewrites its request handler once per process unless in test mode, so a second
    # app started in the same process fails with KeyError('handle_request').
    Sanic.test_mode = True
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
