"""The webhook rig: a channel on a real Sanic app, a stub bot and a fake WeChat API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.channels.wechat import channel as channel_module
from bot.channels.wechat.api import forget_tokens
from crm_store.clock import Clock, utcnow
from tests.bot.channels.fake_wechat import fake_wechat
from tests.bot.channels.wechat_server import Rig, StubBot, make_channel, serve


@pytest.fixture
def credentials_extra() -> dict[str, Any]:
    return {}


@pytest.fixture
def clock() -> Clock:
    """The channel's clock (replay window, link tokens); tests may pin it."""
    return utcnow


@pytest.fixture
async def rig(
    credentials_extra: dict[str, Any], clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Rig]:
    monkeypatch.setattr(channel_module, "FOLLOWUP_DELAY_SECONDS", 0.0)
    forget_tokens()
    bot = StubBot()
    async with fake_wechat() as (fake, base_url):
        channel = make_channel(base_url, clock, **credentials_extra)
        async with serve(channel, bot) as url, aiohttp.ClientSession() as http:
            yield Rig(url, bot, fake, channel, http)
            await channel.idle()
        await channel.api.close()
        channel.followers.close()
    forget_tokens()
