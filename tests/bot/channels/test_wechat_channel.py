from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.wechat import crypto
from bot.channels.wechat.api import WeChatOutput
from bot.channels.wechat.channel import WeChatConfig
from bot.channels.wechat.messages import parse_fields
from crm_store.clock import fixed
from tests.bot.channels.fake_wechat import APP_ID
from tests.bot.channels.wechat_server import (
    AES_KEY,
    TOKEN,
    Rig,
    StubBot,
    event,
    make_channel,
    push,
    serve,
    signed_query,
)


async def test_url_verification_echoes_echostr(rig: Rig) -> None:
    query = {
        "signature": "f464b24fc39322e44b38aa78f5edd27bd1441696",
        "timestamp": "1714036504",
        "nonce": "1514711492",
        "echostr": "4375120948345356249",
    }
    async with rig.http.get(rig.url, params=query) as reply:
        assert (reply.status, await reply.text()) == (200, "4375120948345356249")
    async with rig.http.get(rig.url, params={**query, "nonce": "1"}) as reply:
        assert reply.status == 403
    async with rig.http.get(rig.url) as reply:
        assert reply.status == 403
    async with rig.http.get(rig.url.removesuffix("webhook")) as reply:
        assert reply.status == 200


async def test_quick_answer_is_a_passive_reply_and_the_rest_goes_through_cs(rig: Rig) -> None:
    rig.bot.replies = [
        {"text": "请选择", "buttons": [{"title": "查订单"}, {"title": "查积分"}]},
        {"text": "还有别的吗？"},
    ]
    status, body = await rig.post(push())
    fields = parse_fields(body.encode())
    assert status == 200
    assert (fields["ToUserName"], fields["FromUserName"]) == ("oUSER", "gh_care")
    assert fields["Content"] == "请选择\n1. 查订单\n2. 查积分"
    assert await rig.cs_texts(1) == ["还有别的吗？"]
    heard = rig.bot.heard[0]
    assert (heard.text, heard.sender_id, heard.input_channel) == ("查订单", "oUSER", "wechat")
    assert heard.metadata["channel"] == "wechat"


async def test_late_answer_is_success_then_cs(rig: Rig) -> None:
    rig.bot.delay = 1.0
    rig.bot.replies = [{"text": "第一条"}, {"text": "第二条"}]
    assert await rig.post(push()) == (200, "success")
    assert rig.fake.sent == []
    assert await rig.cs_texts(2) == ["第一条", "第二条"]


async def test_retries_of_a_late_turn_run_the_bot_once_and_send_once(rig: Rig) -> None:
    rig.bot.delay = 1.0
    first, second = await asyncio.gather(rig.post(push()), rig.post(push()))
    third = await rig.post(push())
    assert first == second == third == (200, "success")
    assert await rig.cs_texts(1) == ["您好"]
    await asyncio.sleep(0.3)
    assert len(rig.bot.heard) == 1
    assert len(rig.fake.sent) == 1


async def test_retry_of_a_passive_turn_repeats_the_same_reply_without_the_bot(rig: Rig) -> None:
    first = await rig.post(push())
    retry = await rig.post(push())
    assert first == retry
    assert len(rig.bot.heard) == 1
    other = await rig.post(push(msg_id="1002"))
    assert other[0] == 200 and len(rig.bot.heard) == 2


async def test_event_retries_dedupe_on_sender_and_create_time(rig: Rig) -> None:
    await rig.post(event("subscribe"))
    await rig.post(event("subscribe"))
    await rig.post(event("subscribe", create_time=1714037099))
    assert [message.text for message in rig.bot.heard] == ["/greet", "/greet"]


async def test_menu_clicks_map_to_intents_and_unknown_keys_are_ignored(rig: Rig) -> None:
    await rig.post(event("CLICK", "ORDER"))
    assert await rig.post(event("CLICK", "NOPE", create_time=1)) == (200, "success")
    assert [message.text for message in rig.bot.heard] == ["/order_status"]


async def test_unsubscribe_and_other_events_do_not_reach_the_bot(rig: Rig) -> None:
    assert await rig.post(event("unsubscribe")) == (200, "success")
    assert await rig.post(event("VIEW", "https://example.com", 2)) == (200, "success")
    assert rig.bot.heard == []


async def test_unsupported_types_without_a_domain_response_get_success(rig: Rig) -> None:
    assert await rig.post(push(msg_type="image")) == (200, "success")
    assert rig.bot.heard == []


async def test_unsupported_types_get_the_domain_response(tmp_path: Path) -> None:
    domain = tmp_path / "domain.yml"
    domain.write_text(
        "responses:\n  utter_unsupported_message_type:\n  - text: 暂时只能看懂文字哦\n",
        encoding="utf-8",
    )
    channel = make_channel("http://127.0.0.1:9", domain_path=str(domain))
    async with serve(channel, StubBot()) as url, aiohttp.ClientSession() as http:
        reply = await http.post(url, params=signed_query(), data=push(msg_type="voice"))
        assert parse_fields(await reply.read())["Content"] == "暂时只能看懂文字哦"


async def test_bot_failure_answers_success(rig: Rig) -> None:

    async def broken(message: Any) -> None:
        raise RuntimeError("boom")

    rig.channel._on_new_message = broken
    assert await rig.post(push(msg_id="2001")) == (200, "success")


@pytest.mark.parametrize(
    ("body", "query", "status"),
    [
        (push(), {"signature": "0" * 40, "timestamp": "1", "nonce": "2"}, 403),
        (push(), {}, 403),
        (b"<xml><oops>", None, 400),
        (b"<xml><ToUserName>x</ToUserName></xml>", None, 400),
        (b"<xml>" + b"a" * 70_000 + b"</xml>", None, 413),
    ],
    ids=["wrong-signature", "unsigned", "broken-xml", "incomplete", "oversized"],
)
async def test_refusals(rig: Rig, body: bytes, query: dict[str, str] | None, status: int) -> None:
    assert (await rig.post(body, query))[0] == status
    assert rig.bot.heard == []


@pytest.mark.parametrize("credentials_extra", [{"aes_key": AES_KEY}])
async def test_safe_mode_decrypts_pushes_and_encrypts_replies(rig: Rig) -> None:
    key = crypto.aes_key(AES_KEY)
    encrypted = crypto.encrypt(key, push().decode(), APP_ID)
    envelope = f"<xml><ToUserName>gh_care</ToUserName><Encrypt>{encrypted}</Encrypt></xml>"
    status, body = await rig.post(envelope.encode(), signed_query(encrypted))
    assert status == 200
    fields = parse_fields(body.encode())
    assert crypto.check_signature(
        fields["MsgSignature"], TOKEN, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"]
    )
    reply = parse_fields(crypto.decrypt(key, fields["Encrypt"], APP_ID).encode())
    assert reply["Content"] == "您好"
    assert (await rig.post(envelope.encode(), signed_query("tampered")))[0] == 403
    garbage = "<xml><Encrypt>QUJD</Encrypt></xml>"
    assert (await rig.post(garbage.encode(), signed_query("QUJD")))[0] == 400
    assert (await rig.post(push()))[0] == 400  # plaintext is refused in safe mode


def test_output_channel_is_the_cs_api() -> None:
    channel = make_channel("http://127.0.0.1:9")
    output = channel.get_output_channel()
    assert isinstance(output, WeChatOutput) and output.name() == "wechat"


@pytest.mark.parametrize("missing", ["app_id", "app_secret", "token", "api_base_url"])
def test_config_requires_the_wechat_keys(missing: str) -> None:
    credentials = {"app_id": "a", "app_secret": "s", "token": "t", "api_base_url": "http://x"}
    del credentials[missing]
    with pytest.raises(ValueError, match=missing):
        WeChatConfig.from_credentials(credentials)


def test_config_refuses_a_bad_aes_key() -> None:
    with pytest.raises(ValueError):
        make_channel("http://x", aes_key="too-short")


def test_config_refuses_a_menu_that_is_not_a_mapping() -> None:
    with pytest.raises(ValueError, match="menu"):
        make_channel("http://x", menu=["ORDER"])


@pytest.mark.parametrize(
    ("offset", "status"),
    [(-299, 200), (299, 200), (-301, 403), (301, 403), (-86400, 403)],
)
async def test_pushes_outside_the_replay_window_are_refused(
    rig: Rig, offset: int, status: int
) -> None:
    now = int(time.time())
    assert (await rig.post(push(), signed_query(timestamp=now + offset)))[0] == status
    assert len(rig.bot.heard) == (1 if status == 200 else 0)


@pytest.mark.parametrize("timestamp", ["", "soon", "1e9", "9" * 5000])
async def test_a_timestamp_that_is_not_a_number_is_refused(rig: Rig, timestamp: str) -> None:
    query = {**signed_query(), "timestamp": timestamp}
    assert (await rig.post(push(), query))[0] == 403


@pytest.mark.parametrize("credentials_extra", [{"aes_key": AES_KEY}])
async def test_safe_mode_refuses_a_replayed_push(rig: Rig) -> None:
    encrypted = crypto.encrypt(crypto.aes_key(AES_KEY), push().decode(), APP_ID)
    envelope = f"<xml><Encrypt>{encrypted}</Encrypt></xml>".encode()
    stale = signed_query(encrypted, timestamp=int(time.time()) - 600)
    assert (await rig.post(envelope, stale))[0] == 403
    assert (await rig.post(envelope, signed_query(encrypted)))[0] == 200


@pytest.mark.parametrize("clock", [fixed(datetime.fromtimestamp(1714037059, timezone.utc))])
async def test_the_window_is_measured_on_the_channels_clock(rig: Rig) -> None:
    assert (await rig.post(push(), signed_query(timestamp=1714037059 + 200)))[0] == 200
    assert (await rig.post(push(msg_id="2"), signed_query()))[0] == 403


@pytest.mark.parametrize("credentials_extra", [{"replay_window": 10}])
async def test_the_replay_window_is_configurable(rig: Rig) -> None:
    assert (await rig.post(push(), signed_query(timestamp=int(time.time()) - 30)))[0] == 403


def test_config_refuses_a_replay_window_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="replay_window"):
        make_channel("http://x", replay_window=0)
