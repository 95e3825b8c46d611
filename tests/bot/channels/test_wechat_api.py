from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot.channels.wechat import api as api_module
from bot.channels.wechat.api import (
    DailyLimitReached,
    OutsideWindow,
    QuotaExceeded,
    TokenRefused,
    WeChatAPI,
    WeChatOutput,
    forget_tokens,
)
from tests.bot.channels.fake_wechat import APP_ID, APP_SECRET, FakeWeChat, fake_wechat


@pytest.fixture
async def wechat() -> AsyncIterator[tuple[FakeWeChat, WeChatAPI]]:
    forget_tokens()
    async with fake_wechat() as (fake, base_url):
        client = WeChatAPI(base_url, APP_ID, APP_SECRET)
        yield fake, client
        await client.close()
    forget_tokens()


async def test_send_text_uses_the_cs_api_and_one_cached_token(
    wechat: tuple[FakeWeChat, WeChatAPI],
) -> None:
    fake, client = wechat
    await asyncio.gather(*(client.send_text("oOPENID", f"第{n}条") for n in range(5)))
    assert fake.token_fetches == 1
    assert sorted(item["text"]["content"] for item in fake.sent) == [f"第{n}条" for n in range(5)]
    assert fake.sent[0]["touser"] == "oOPENID"
    assert fake.sent[0]["msgtype"] == "text"


async def test_token_is_shared_between_clients_of_the_same_app(
    wechat: tuple[FakeWeChat, WeChatAPI],
) -> None:
    fake, client = wechat
    other = WeChatAPI(client.base_url, APP_ID, APP_SECRET)
    await client.send_text("o1", "a")
    await other.send_text("o2", "b")
    await other.close()
    assert fake.token_fetches == 1


async def test_token_is_refreshed_before_it_expires(
    wechat: tuple[FakeWeChat, WeChatAPI],
) -> None:
    fake, client = wechat
    fake.expires_in = api_module.REFRESH_MARGIN_SECONDS  # already inside the refresh margin
    await client.send_text("o1", "a")
    await client.send_text("o1", "b")
    assert fake.token_fetches == 2


async def test_stale_token_is_refetched_once(wechat: tuple[FakeWeChat, WeChatAPI]) -> None:
    fake, client = wechat
    await client.send_text("o1", "a")
    fake.token_fetches += 1  # someone else refreshed: our cached token is now invalid
    await client.send_text("o1", "b")
    assert fake.used_tokens == ["TOKEN1", "TOKEN1", "TOKEN3"]
    assert [item["text"]["content"] for item in fake.sent] == ["a", "b"]


@pytest.mark.parametrize(
    ("errcode", "error_type"),
    [(45015, OutsideWindow), (45047, QuotaExceeded), (45009, DailyLimitReached)],
)
async def test_errcodes_become_typed_errors(
    wechat: tuple[FakeWeChat, WeChatAPI], errcode: int, error_type: type[Exception]
) -> None:
    fake, client = wechat
    fake.errcodes.append(errcode)
    with pytest.raises(error_type):
        await client.send_text("o1", "a")


async def test_wrong_secret_is_refused() -> None:
    forget_tokens()
    async with fake_wechat() as (_fake, base_url):
        client = WeChatAPI(base_url, APP_ID, "wrong")
        with pytest.raises(TokenRefused):
            await client.send_text("o1", "a")
        await client.close()


async def test_output_channel_renders_buttons_as_numbered_lines(
    wechat: tuple[FakeWeChat, WeChatAPI],
) -> None:
    fake, client = wechat
    output = WeChatOutput(client)
    buttons = [{"title": "查订单", "payload": "/order"}, {"title": "查积分", "payload": "/points"}]
    await output.send_response("o1", {"text": "请选择", "buttons": buttons})
    await output.send_response("o1", {"custom": {"only": "for web"}})
    assert [item["text"]["content"] for item in fake.sent] == ["请选择\n1. 查订单\n2. 查积分"]
