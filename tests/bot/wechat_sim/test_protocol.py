"""The simulator's API side as the bot's own WeChatAPI client meets it: tokens, window, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from bot.channels.wechat.api import (
    DailyLimitReached,
    OutsideWindow,
    QuotaExceeded,
    TokenRefused,
    WeChatAPI,
    WeChatAPIError,
    forget_tokens,
)
from bot.wechat_sim.config import SimConfig
from tests.bot.wechat_sim.helpers import (
    APP_ID,
    APP_SECRET,
    Sim,
    StubWebhook,
    config,
    running_sim,
    running_webhook,
)

USER = "o_user_1"
HOUR = 3600


@pytest.fixture
async def sim_factory() -> AsyncIterator[Any]:
    """Starts a simulator (pushing to a stub bot that answers "success") with some overrides."""
    forget_tokens()
    async with AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Sim:
            webhook = await stack.enter_async_context(running_webhook(StubWebhook()))
            sim_config: SimConfig = config(webhook_url=webhook, **overrides)
            return await stack.enter_async_context(running_sim(sim_config))

        yield start
    forget_tokens()


@pytest.fixture
async def sim(sim_factory: Any) -> Sim:
    return await sim_factory()


@pytest.fixture
async def api(sim: Sim) -> AsyncIterator[WeChatAPI]:
    client = WeChatAPI(sim.url, APP_ID, APP_SECRET)
    yield client
    await client.close()


async def token(sim: Sim) -> str:
    query = f"?grant_type=client_credential&appid={APP_ID}&secret={APP_SECRET}"
    status, answer = await sim.get("/cgi-bin/token" + query)
    assert status == 200 and answer["expires_in"] == 7200
    return str(answer["access_token"])


async def cs_send(sim: Sim, access_token: str, body: Any | None = None) -> int:
    body = body or {"touser": USER, "msgtype": "text", "text": {"content": "您好"}}
    path = f"/cgi-bin/message/custom/send?access_token={access_token}"
    status, answer = await sim.post(path, body)
    assert status == 200
    return int(answer["errcode"])


async def user_says(sim: Sim, text: str = "你好") -> None:
    status, answer = await sim.post(f"/sim/api/users/{USER}/send", {"text": text})
    assert status == 200, answer


async def user_event(sim: Sim, event: str, key: str = "") -> None:
    status, answer = await sim.post(f"/sim/api/users/{USER}/event", {"event": event, "key": key})
    assert status == 200, answer


# --- the access token ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("appid", "secret", "errcode"), [("wx_other", APP_SECRET, 40013), (APP_ID, "wrong", 40125)]
)
async def test_the_token_endpoint_refuses_wrong_credentials(
    sim: Sim, appid: str, secret: str, errcode: int
) -> None:
    client = WeChatAPI(sim.url, appid, secret)
    with pytest.raises(TokenRefused) as refused:
        await client.access_token()
    await client.close()
    assert refused.value.errcode == errcode


async def test_a_token_expires_after_its_lifetime(sim: Sim) -> None:
    await user_says(sim)
    value = await token(sim)
    assert await cs_send(sim, value) == 0
    sim.clock.advance(7200)
    assert await cs_send(sim, value) == 42001


async def test_a_new_fetch_leaves_the_old_token_five_minutes(sim: Sim) -> None:
    await user_says(sim)
    old, new = await token(sim), await token(sim)
    sim.clock.advance(299)
    assert await cs_send(sim, old) == 0
    sim.clock.advance(2)
    assert await cs_send(sim, old) == 40001
    assert await cs_send(sim, new) == 0


async def test_missing_and_unknown_tokens(sim: Sim) -> None:
    assert await cs_send(sim, "") == 41001
    assert await cs_send(sim, "forged") == 40001


async def test_the_client_fetches_once_and_again_only_when_the_token_expired(
    sim: Sim, api: WeChatAPI
) -> None:
    await user_says(sim)
    await api.send_text(USER, "一")
    await api.send_text(USER, "二")
    assert sim.simulator.state.tokens.issued == 1
    sim.clock.advance(2 * HOUR)  # the client's cache does not know: WeChat answers 42001
    await api.send_text(USER, "三")
    assert sim.simulator.state.tokens.issued == 2


async def test_a_configured_token_lifetime(sim_factory: Any) -> None:
    sim = await sim_factory(token_lifetime_s=60)
    query = f"?grant_type=client_credential&appid={APP_ID}&secret={APP_SECRET}"
    _, answer = await sim.get("/cgi-bin/token" + query)
    assert answer["expires_in"] == 60


async def test_the_stable_token_is_shared_until_forced(sim: Sim) -> None:
    body = {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET}
    _, first = await sim.post("/cgi-bin/stable_token", body)
    _, second = await sim.post("/cgi-bin/stable_token", body)
    _, forced = await sim.post("/cgi-bin/stable_token", {**body, "force_refresh": True})
    assert first["access_token"] == second["access_token"] != forced["access_token"]
    _, refused = await sim.post("/cgi-bin/stable_token", {**body, "secret": "x"})
    assert refused["errcode"] == 40125


# --- the customer-service window -------------------------------------------------------------


async def test_a_user_message_opens_48_hours_and_five_messages(sim: Sim, api: WeChatAPI) -> None:
    await user_says(sim)
    for number in range(5):
        await api.send_text(USER, f"第{number}条")
    with pytest.raises(QuotaExceeded):
        await api.send_text(USER, "第6条")
    await user_says(sim, "还在吗")  # a new message, a fresh quota
    await api.send_text(USER, "在的")
    sim.clock.advance(48 * HOUR)
    with pytest.raises(OutsideWindow):
        await api.send_text(USER, "太晚了")


async def test_the_quota_is_a_parameter(sim_factory: Any) -> None:
    sim = await sim_factory(quota=1)
    client = WeChatAPI(sim.url, APP_ID, APP_SECRET)
    await user_says(sim)
    await client.send_text(USER, "一")
    with pytest.raises(QuotaExceeded):
        await client.send_text(USER, "二")
    await client.close()


@pytest.mark.parametrize(("event", "key"), [("subscribe", ""), ("CLICK", "ORDER")])
async def test_a_follow_or_a_menu_click_opens_one_minute_and_three_messages(
    sim: Sim, api: WeChatAPI, event: str, key: str
) -> None:
    await user_event(sim, event, key)
    for number in range(3):
        await api.send_text(USER, f"第{number}条")
    with pytest.raises(QuotaExceeded):
        await api.send_text(USER, "第4条")
    await user_event(sim, event, key)
    sim.clock.advance(60)
    with pytest.raises(OutsideWindow):
        await api.send_text(USER, "过期了")


async def test_no_window_without_a_user_action(sim: Sim, api: WeChatAPI) -> None:
    with pytest.raises(OutsideWindow):
        await api.send_text("o_demo_openid", "您好")
    with pytest.raises(OutsideWindow):
        await api.send_text("o_never_seen", "您好")


async def test_an_unfollowed_user_gets_neither_cs_nor_template_messages(
    sim: Sim, api: WeChatAPI
) -> None:
    await user_says(sim)
    await user_event(sim, "unsubscribe")
    with pytest.raises(OutsideWindow):
        await api.send_text(USER, "您好")
    with pytest.raises(WeChatAPIError) as refused:
        await api.call("/cgi-bin/message/template/send", template(USER))
    assert refused.value.errcode == 43004
    status, _ = await sim.post(f"/sim/api/users/{USER}/send", {"text": "你好"})
    assert status == 409  # only followers can write to the account


async def test_the_daily_limit(sim_factory: Any) -> None:
    sim = await sim_factory(daily_limit=2)
    client = WeChatAPI(sim.url, APP_ID, APP_SECRET)
    await user_says(sim)
    await client.send_text(USER, "一")
    await client.send_text(USER, "二")
    with pytest.raises(DailyLimitReached):
        await client.send_text(USER, "三")
    sim.clock.advance(24 * HOUR)  # a new day in Beijing, still inside the 48 hours
    await client.send_text(USER, "四")
    await client.close()


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"touser": USER, "msgtype": "Text", "text": {"content": "x"}}, 40008),
        ({"touser": USER, "msgtype": "text", "text": {"content": ""}}, 44004),
        ({"touser": USER, "msgtype": "text", "text": {"content": "长" * 700}}, 45002),
        ({"msgtype": "text", "text": {"content": "x"}}, 40003),
        (["not", "an", "object"], 47001),
    ],
)
async def test_malformed_cs_messages(sim: Sim, body: Any, errcode: int) -> None:
    await user_says(sim)
    assert await cs_send(sim, await token(sim), body) == errcode


# --- template messages -----------------------------------------------------------------------


def template(openid: str, template_id: str = "TM_CAREBOT_NOTICE") -> dict[str, Any]:
    return {
        "touser": openid,
        "template_id": template_id,
        "url": "https://example.com/orders",
        "data": {"thing1": {"value": "您的订单已发货"}, "time2": {"value": "2026-11-22"}},
    }


async def test_a_template_message_reaches_a_follower_outside_the_window(
    sim: Sim, api: WeChatAPI
) -> None:
    answer = await api.call("/cgi-bin/message/template/send", template("o_demo_openid"))
    assert answer["errcode"] == 0 and answer["errmsg"] == "ok" and answer["msgid"] > 0
    _, [record] = await sim.get("/sim/api/log?openid=o_demo_openid")
    assert (record["sender"], record["kind"], record["errcode"]) == ("bot", "template", 0)
    assert record["content"] == "您的订单已发货\n2026-11-22"
    assert record["detail"]["template_id"] == "TM_CAREBOT_NOTICE"


async def test_the_accounts_followers_get_template_messages_and_appear_once_they_do(
    sim_factory: Any,
) -> None:
    """Followers from before the simulator started (the CRM's, `carebot run` passes them):
    reachable at once, listed once something happens to them; strangers stay 40003."""
    sim = await sim_factory(followers=("o_0000002a1b2c3d4e", "o_0000002b5f6a7b8c"))
    client = WeChatAPI(sim.url, APP_ID, APP_SECRET)
    try:
        _, users = await sim.get("/sim/api/users")
        assert {u["openid"] for u in users} == {"o_demo_openid", "o_demo_lunar"}
        answer = await client.call("/cgi-bin/message/template/send", template("o_0000002a1b2c3d4e"))
        assert answer["errcode"] == 0
        with pytest.raises(WeChatAPIError) as unknown:
            await client.call("/cgi-bin/message/template/send", template("o_stranger"))
        assert unknown.value.errcode == 40003
        with pytest.raises(OutsideWindow):  # a follower, but no message of theirs: no window
            await client.send_text("o_0000002b5f6a7b8c", "您好")
    finally:
        await client.close()
    _, users = await sim.get("/sim/api/users")
    listed = {u["openid"]: u["followed"] for u in users}
    assert listed == {
        "o_demo_openid": True,
        "o_demo_lunar": True,
        "o_0000002a1b2c3d4e": True,
        "o_0000002b5f6a7b8c": True,
    }


async def test_an_unknown_template_is_refused(sim: Sim, api: WeChatAPI) -> None:
    with pytest.raises(WeChatAPIError) as refused:
        await api.call("/cgi-bin/message/template/send", template("o_demo_openid", "TM_OTHER"))
    assert refused.value.errcode == 40037


# --- the log and the clock -------------------------------------------------------------------


async def test_everything_the_bot_sends_is_logged_per_user(sim: Sim, api: WeChatAPI) -> None:
    await user_says(sim, "在吗")
    await api.send_text(USER, "在的")
    with pytest.raises(OutsideWindow):
        await api.send_text("o_demo_lunar", "您好")
    _, mine = await sim.get(f"/sim/api/log?openid={USER}")
    assert [(r["sender"], r["kind"], r["content"]) for r in mine if r["sender"] != "wechat"] == [
        ("user", "text", "在吗"),
        ("bot", "cs", "在的"),
    ]
    _, [refused] = await sim.get("/sim/api/log?openid=o_demo_lunar")
    assert (refused["kind"], refused["errcode"], refused["content"]) == ("cs", 45015, "您好")
    _, later = await sim.get(f"/sim/api/log?since={mine[-1]['id']}")
    assert [r["openid"] for r in later] == ["o_demo_lunar"]


async def test_the_clock_moves_forward_only(sim: Sim) -> None:
    status, moved = await sim.post("/sim/api/clock", {"advance_s": 90})
    assert status == 200 and moved["offset_s"] == 90
    for bad in ({"advance_s": -1}, {"advance_s": "soon"}, {}):
        status, _ = await sim.post("/sim/api/clock", bad)
        assert status == 400


async def test_garbage_gets_an_error_not_a_crash(sim: Sim) -> None:
    path = f"/cgi-bin/message/custom/send?access_token={await token(sim)}"
    async with sim.http.post(sim.url + path, data=b"\xff<not json") as answer:
        assert answer.status == 200 and (await answer.json())["errcode"] == 47001
    status, _ = await sim.get("/sim/api/log?since=abc")
    assert status == 400
    _, refused = await sim.get("/cgi-bin/token?grant_type=password&appid=x&secret=y")
    assert refused["errcode"] == 40002
