from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from bot.channels.wechat import api as api_module
from bot.channels.wechat.api import (
    DailyLimitReached,
    DeliveryFailed,
    OutsideWindow,
    QuotaExceeded,
    TokenRefused,
    Unfollowed,
    WeChatAPI,
    WeChatOutput,
    forget_tokens,
)
from bot.channels.wechat.templates import TemplateConfig
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
    [
        (45015, OutsideWindow),
        (45047, QuotaExceeded),
        (45009, DailyLimitReached),
        (43004, Unfollowed),
    ],
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


TEMPLATE = TemplateConfig("TPL_CARE", "thing1", 20, "https://care.example/chat")


@pytest.mark.parametrize("errcode", [45015, 45047])
async def test_a_closed_cs_window_falls_back_to_the_template_and_stays_there(
    wechat: tuple[FakeWeChat, WeChatAPI], errcode: int
) -> None:
    fake, client = wechat
    output = WeChatOutput(client, TEMPLATE)
    fake.errcodes.append(errcode)
    await output.send_response("o1", {"text": "您的积分将于本月底过期，记得使用哦"})
    await output.send_text_message("o1", "第二条")
    assert fake.sent == []
    assert len(fake.used_tokens) == 1  # after the refusal the CS API is not asked again
    assert fake.templates == [
        {
            "touser": "o1",
            "template_id": "TPL_CARE",
            "url": "https://care.example/chat",
            "data": {"thing1": {"value": "您的积分将于本月底过期，记得使用哦"}},
        },
        {
            "touser": "o1",
            "template_id": "TPL_CARE",
            "url": "https://care.example/chat",
            "data": {"thing1": {"value": "第二条"}},
        },
    ]


async def test_inside_the_window_no_template_is_sent(wechat: tuple[FakeWeChat, WeChatAPI]) -> None:
    fake, client = wechat
    await WeChatOutput(client, TEMPLATE).send_text_message("o1", "您好")
    assert [item["text"]["content"] for item in fake.sent] == ["您好"]
    assert fake.templates == []


async def test_outside_the_window_without_a_template_fails_with_the_reason(
    wechat: tuple[FakeWeChat, WeChatAPI], caplog: pytest.LogCaptureFixture
) -> None:
    fake, client = wechat
    fake.errcodes.append(45015)
    with caplog.at_level(logging.INFO), pytest.raises(DeliveryFailed) as failure:
        await WeChatOutput(client).send_text_message("o1", "您好")
    assert "45015" in str(failure.value) and "no template" in str(failure.value)
    # the care scheduler keeps the message and tries later: a warning, not an error
    assert failure.value.errcode == 45015 and failure.value.expected
    [line] = [r for r in caplog.records if "wechat delivery to o1 failed" in r.getMessage()]
    assert line.levelname == "WARNING"


async def test_an_unknown_openid_is_an_error_the_scheduler_does_not_expect(
    wechat: tuple[FakeWeChat, WeChatAPI], caplog: pytest.LogCaptureFixture
) -> None:
    fake, client = wechat
    fake.errcodes.append(45015)
    fake.template_errcodes.append(40003)
    with caplog.at_level(logging.INFO), pytest.raises(DeliveryFailed) as failure:
        await WeChatOutput(client, TEMPLATE).send_text_message("o1", "您好")
    assert failure.value.errcode == 40003 and not failure.value.expected
    [line] = [r for r in caplog.records if "wechat delivery to o1 failed" in r.getMessage()]
    assert line.levelname == "ERROR"


@pytest.mark.parametrize(
    ("cs_errcodes", "template_errcodes", "expected"),
    [
        ([45009], [], "45009"),  # the daily quota: give up, a template would not help today
        ([45015], [43004], "43004"),  # the user unfollowed
        ([45015], [45009], "45009"),  # the template quota is used up too
    ],
    ids=["daily-limit", "unfollowed", "template-daily-limit"],
)
async def test_delivery_gives_up_with_the_errcode(
    wechat: tuple[FakeWeChat, WeChatAPI],
    cs_errcodes: list[int],
    template_errcodes: list[int],
    expected: str,
) -> None:
    fake, client = wechat
    fake.errcodes += cs_errcodes
    fake.template_errcodes += template_errcodes
    with pytest.raises(DeliveryFailed, match=expected) as failure:
        await WeChatOutput(client, TEMPLATE).send_text_message("o1", "您好")
    assert fake.sent == [] and fake.templates == []
    assert failure.value.errcode == int(expected) and failure.value.expected


async def test_a_stale_token_on_the_template_path_is_refetched_once(
    wechat: tuple[FakeWeChat, WeChatAPI],
) -> None:
    fake, client = wechat
    fake.errcodes.append(45015)
    await client.access_token()
    fake.token_fetches += 1  # someone else refreshed: the cached token is stale
    await WeChatOutput(client, TEMPLATE).send_text_message("o1", "您好")
    assert len(fake.templates) == 1


async def test_an_unreachable_api_is_a_delivery_failure() -> None:
    forget_tokens()
    client = WeChatAPI("http://127.0.0.1:9", APP_ID, APP_SECRET)
    with pytest.raises(DeliveryFailed, match="o1") as failure:
        await WeChatOutput(client, TEMPLATE).send_text_message("o1", "您好")
    await client.close()
    assert failure.value.errcode is None and not failure.value.expected


def test_a_failed_call_never_logs_the_access_token() -> None:
    from unittest.mock import Mock

    import aiohttp
    from yarl import URL

    from bot.channels.wechat.api import _reason

    info = Mock(real_url=URL("https://api.example/cgi-bin/x?access_token=SECRET123"))
    info.url = info.real_url
    error = aiohttp.ContentTypeError(info, (), status=502, message="bad gateway")
    assert "SECRET123" in str(error)  # what aiohttp itself would print
    assert "SECRET123" not in _reason(error, None) and "502" in _reason(error, None)
