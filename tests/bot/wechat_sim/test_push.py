"""Pushes as WeChat sends them: signed, encrypted in safe mode, retried, and their replies."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.channels.wechat import crypto
from bot.channels.wechat.api import forget_tokens
from bot.channels.wechat.channel import WeChatConfig, WeChatInput
from bot.channels.wechat.messages import encrypted_reply
from bot.wechat_sim.state import SimClock
from tests.bot.channels.wechat_server import StubBot, serve
from tests.bot.wechat_sim.helpers import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    Sim,
    StubWebhook,
    config,
    running_sim,
    running_webhook,
)
from tests.integration.system import free_port

USER = "o_user_1"
ORIGINAL_ID = "gh_carebot_demo"


def reply_xml(message: dict[str, str], content: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{message['FromUserName']}]]></ToUserName>"
        f"<FromUserName><![CDATA[{message['ToUserName']}]]></FromUserName>"
        f"<CreateTime>1</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content></xml>"
    )


def encrypted(xml: str, nonce: str = "42") -> str:
    body = crypto.encrypt(crypto.aes_key(AES_KEY), xml, APP_ID)
    return encrypted_reply(body, crypto.signature(TOKEN, "1", nonce, body), "1", nonce)


@asynccontextmanager
async def sim_with(stub: StubWebhook, **overrides: Any) -> AsyncIterator[Sim]:
    async with (
        running_webhook(stub) as webhook,
        running_sim(config(webhook_url=webhook, **overrides)) as sim,
    ):
        yield sim


async def records(sim: Sim, openid: str = USER) -> list[dict[str, Any]]:
    _, log = await sim.get(f"/sim/api/log?openid={openid}")
    return list(log)


async def test_a_plain_mode_text_push_and_its_passive_reply() -> None:
    stub = StubWebhook(answer=lambda message: reply_xml(message, "您好，我是小助手"))
    async with sim_with(stub) as sim:
        status, answer = await sim.post(f"/sim/api/users/{USER}/send", {"text": "你好"})
        log = await records(sim)
    assert status == 200 and answer["failed"] is False
    assert answer["passive"] == {"msg_type": "text", "content": "您好，我是小助手"}
    [push] = stub.pushes
    assert set(push["query"]) == {"signature", "timestamp", "nonce", "openid"}
    message = push["message"]
    assert (message["ToUserName"], message["FromUserName"]) == (ORIGINAL_ID, USER)
    assert (message["MsgType"], message["Content"]) == ("text", "你好")
    assert message["MsgId"].isdigit() and message["CreateTime"].isdigit()
    assert [(r["sender"], r["kind"]) for r in log] == [
        ("user", "text"),
        ("wechat", "push"),
        ("bot", "passive"),
    ]
    assert log[-1]["content"] == "您好，我是小助手"


async def test_a_safe_mode_push_is_encrypted_and_so_must_be_the_reply() -> None:
    stub = StubWebhook(answer=lambda m: encrypted(reply_xml(m, "安全模式")), aes_key=AES_KEY)
    async with sim_with(stub, aes_key=AES_KEY) as sim:
        _, answer = await sim.post(f"/sim/api/users/{USER}/send", {"text": "你好"})
        stub.answer = lambda message: reply_xml(message, "明文")
        _, plain = await sim.post(f"/sim/api/users/{USER}/send", {"text": "再来"})
    assert answer["passive"]["content"] == "安全模式"
    first = stub.pushes[0]
    assert first["query"]["encrypt_type"] == "aes" and "msg_signature" in first["query"]
    assert b"<Content>" not in first["body"] and b"<Encrypt>" in first["body"]
    assert plain["failed"] is True and plain["passive"] is None


@pytest.mark.parametrize(
    ("answer", "passive", "failed"),
    [("success", None, False), ("", None, False), (json.dumps({"text": "hi"}), None, True)],
)
async def test_no_reply_and_a_malformed_reply(answer: str, passive: Any, failed: bool) -> None:
    async with sim_with(StubWebhook(answer=lambda message: answer)) as sim:
        _, result = await sim.post(f"/sim/api/users/{USER}/send", {"text": "你好"})
        log = await records(sim)
    assert (result["passive"], result["failed"]) == (passive, failed)
    assert ("failed" in [r["kind"] for r in log]) is failed


async def test_a_silent_bot_gets_three_identical_pushes_then_the_user_sees_the_failure() -> None:
    stub = StubWebhook(delays=[2.0, 2.0, 2.0])
    async with sim_with(stub, push_timeout_s=0.3) as sim:
        started = time.monotonic()
        _, result = await sim.post(f"/sim/api/users/{USER}/send", {"text": "你好"})
        elapsed = time.monotonic() - started
        log = await records(sim)
    assert [a["outcome"] for a in result["attempts"]] == ["timeout"] * 3
    assert result["failed"] is True and elapsed < 2.0
    assert len(stub.pushes) == 3
    assert len({(p["body"], json.dumps(p["query"], sort_keys=True)) for p in stub.pushes}) == 1
    pushes = [r["detail"] for r in log if r["kind"] == "push"]
    assert [(p["attempt"], p["outcome"]) for p in pushes] == [(n, "timeout") for n in (1, 2, 3)]
    assert log[-1]["kind"] == "failed"


async def test_a_retry_that_is_answered_in_time_delivers_the_reply() -> None:
    stub = StubWebhook(answer=lambda m: reply_xml(m, "来了"), delays=[1.0, 0.0])
    async with sim_with(stub, push_timeout_s=0.3) as sim:
        _, result = await sim.post(f"/sim/api/users/{USER}/send", {"text": "你好"})
    assert [a["outcome"] for a in result["attempts"]] == ["timeout", "answered"]
    assert result["passive"]["content"] == "来了"


async def test_the_retry_count_is_a_parameter() -> None:
    stub = StubWebhook(delays=[1.0, 1.0])
    async with sim_with(stub, push_timeout_s=0.2, push_attempts=2) as sim:
        _, result = await sim.post(f"/sim/api/users/{USER}/send", {"text": "你好"})
    assert len(result["attempts"]) == len(stub.pushes) == 2


async def test_an_unreachable_bot_is_retried_and_fails() -> None:
    async with running_sim(config(webhook_url="http://127.0.0.1:9/webhook")) as sim:
        _, result = await sim.post(f"/sim/api/users/{USER}/send", {"text": "你好"})
    assert [a["outcome"] for a in result["attempts"]] == ["unreachable"] * 3
    assert result["failed"] is True


async def test_events_and_images() -> None:
    stub = StubWebhook()
    async with sim_with(stub) as sim:
        for body in ({"event": "subscribe"}, {"event": "CLICK", "key": "ORDER"}):
            status, _ = await sim.post(f"/sim/api/users/{USER}/event", body)
            assert status == 200
        status, _ = await sim.post(f"/sim/api/users/{USER}/image")
        assert status == 200
        await sim.post(f"/sim/api/users/{USER}/event", {"event": "unsubscribe"})
    subscribe, click, image, unsubscribe = (push["message"] for push in stub.pushes)
    assert (subscribe["MsgType"], subscribe["Event"], "EventKey" in subscribe) == (
        "event",
        "subscribe",
        False,
    )
    assert (click["Event"], click["EventKey"]) == ("CLICK", "ORDER")
    assert click["CreateTime"] > subscribe["CreateTime"]  # events are told apart by it
    assert image["MsgType"] == "image" and image["PicUrl"] and image["MediaId"]
    assert unsubscribe["Event"] == "unsubscribe"


@pytest.mark.parametrize("echo", [True, False])
async def test_the_url_check_of_the_oa_console(echo: bool) -> None:
    async with sim_with(StubWebhook(echo=echo)) as sim:
        status, result = await sim.post("/sim/api/verify")
    assert status == 200 and result["ok"] is echo and result["status"] == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("send", {}),
        ("send", {"text": "   "}),
        ("send", {"text": "长" * 2001}),
        ("event", {"event": "CLICK"}),
        ("event", {"event": "LOCATION"}),
        ("event", ["subscribe"]),
    ],
)
async def test_bad_control_requests_get_a_400(path: str, body: Any) -> None:
    async with sim_with(StubWebhook()) as sim:
        status, answer = await sim.post(f"/sim/api/users/{USER}/{path}", body)
        assert status == 400 and answer["error"]
        status, _ = await sim.post(f"/sim/api/users/{'o' * 65}/send", {"text": "你好"})
        assert status == 400


async def test_an_added_user_follows_before_writing() -> None:
    async with sim_with(StubWebhook()) as sim:
        status, user = await sim.post("/sim/api/users", {"openid": "o_new", "name": "新用户"})
        assert status == 201 and user["followed"] is False
        status, _ = await sim.post("/sim/api/users/o_new/send", {"text": "你好"})
        assert status == 409
        await sim.post("/sim/api/users/o_new/event", {"event": "subscribe"})
        status, _ = await sim.post("/sim/api/users/o_new/send", {"text": "你好"})
        assert status == 200
        _, users = await sim.get("/sim/api/users")
        status, _ = await sim.post("/sim/api/users", {"openid": ""})
        assert status == 400
    named = {u["openid"]: u["name"] for u in users}
    assert named["o_demo_openid"] == "王小明" and named["o_demo_lunar"] == "李娜"


async def test_the_page_is_served() -> None:
    async with running_sim(config()) as sim, sim.http.get(sim.url + "/") as page:
        html = await page.text()
    assert page.status == 200 and "微信模拟器" in html and "<script" in html
    assert "http://" not in html.split("<script", 1)[1].split(">", 1)[0]  # no CDN


# --- with the bot's real WeChat channel (a stub instead of Rasa) -----------------------------


@asynccontextmanager
async def sim_and_channel(bot: StubBot) -> AsyncIterator[Sim]:
    """The simulator and the bot's channel in safe mode, each pointing at the other."""
    forget_tokens()
    sim_port = free_port()
    channel = WeChatInput(
        WeChatConfig(
            app_id=APP_ID,
            app_secret=APP_SECRET,
            token=TOKEN,
            api_base_url=f"http://127.0.0.1:{sim_port}",
            aes_key=crypto.aes_key(AES_KEY),
            passive_deadline=0.5,
        )
    )
    async with serve(channel, bot) as webhook:
        sim_config = config(webhook_url=webhook, aes_key=AES_KEY)
        async with running_sim(sim_config, SimClock(), port=sim_port) as sim:
            yield sim
    await channel.api.close()
    forget_tokens()


async def test_the_channel_answers_passively_in_safe_mode() -> None:
    bot = StubBot(replies=[{"text": "您好"}, {"text": "还有什么可以帮您？"}])
    async with sim_and_channel(bot) as sim:
        _, result = await sim.post(f"/sim/api/users/{USER}/send", {"text": "你好"})
        log = await wait_for_kind(sim, "cs")
    assert result["passive"] == {"msg_type": "text", "content": "您好"}
    assert bot.heard[0].text == "你好" and bot.heard[0].sender_id == USER
    assert [(r["kind"], r["content"], r["errcode"]) for r in log if r["sender"] == "bot"] == [
        ("passive", "您好", 0),
        ("cs", "还有什么可以帮您？", 0),
    ]


async def test_the_channel_passes_the_url_check() -> None:
    async with sim_and_channel(StubBot()) as sim:
        _, result = await sim.post("/sim/api/verify")
    assert result["ok"] is True


async def test_a_late_answer_arrives_through_the_cs_api() -> None:
    bot = StubBot(replies=[{"text": "查到了"}], delay=1.0)
    async with sim_and_channel(bot) as sim:
        _, result = await sim.post(f"/sim/api/users/{USER}/send", {"text": "我的订单"})
        log = await wait_for_kind(sim, "cs")
    assert result["passive"] is None and result["failed"] is False
    assert [(r["kind"], r["content"]) for r in log if r["sender"] == "bot"] == [("cs", "查到了")]


async def wait_for_kind(sim: Sim, kind: str, timeout_s: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        log = await records(sim)
        if any(r["kind"] == kind for r in log):
            return log
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {kind} record in {await records(sim)}")
