"""Fuzz both webhooks (GET verification and POST push) in plain and safe mode: 4xx, never 5xx."""

from __future__ import annotations

import base64
import random
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.channels.wechat import crypto
from bot.channels.wechat.channel import WeChatInput
from tests.bot.channels.fake_wechat import APP_ID, APP_SECRET
from tests.bot.channels.wechat_server import StubBot, serve

TOKEN = "AAAAA"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
VALID = (
    "<xml><ToUserName>gh_care</ToUserName><FromUserName>oUSER</FromUserName>"
    "<CreateTime>1714037059</CreateTime><MsgType>text</MsgType><Content>你好</Content>"
    "<MsgId>{msg_id}</MsgId></xml>"
)
NASTY_BODIES = [
    b"",
    b"\x00" * 100,
    b"<xml>",
    b"<?xml version='1.0' encoding='no-such-codec'?><xml/>",
    b"<?xml version='1.0' encoding='gbk'?><xml><a>\xff\xfe</a></xml>",
    b'<!DOCTYPE xml [<!ENTITY a "' + b"x" * 1000 + b'">]><xml>&a;&a;&a;</xml>',
    b"<xml>" + b"<a>" * 20_000 + b"</a>" * 20_000 + b"</xml>",
    b"<xml><CreateTime>" + b"9" * 5000 + b"</CreateTime></xml>",
    b"<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType>"
    b"<CreateTime>-1</CreateTime><Encrypt>\xe4\xbd\xa0</Encrypt></xml>",
    b'{"json": "instead"}',
    b"<xml>" + b"a" * 2_000_000 + b"</xml>",
]
CONTENT_TYPES = [
    "text/xml",
    "application/json",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
]


def random_body(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 4000))
    if kind == 1:
        return rng.choice(NASTY_BODIES)
    valid = VALID.format(msg_id=rng.randrange(10**6)).encode()
    cut = rng.randrange(len(valid))
    if kind == 2:
        return valid[:cut]
    return valid[:cut] + rng.randbytes(8) + valid[cut:]


def signed(rng: random.Random, encrypted: str | None = None) -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), str(rng.randrange(10**9))
    query = {"timestamp": timestamp, "nonce": nonce}
    query["signature"] = crypto.signature(TOKEN, timestamp, nonce)
    if encrypted is not None:
        query["msg_signature"] = crypto.signature(TOKEN, timestamp, nonce, encrypted)
    return query


def signed_envelope(rng: random.Random) -> tuple[bytes, dict[str, str]]:
    """A correctly signed safe-mode envelope around garbage, so decryption itself is fuzzed."""
    inner = random_body(rng)[:3000]
    if rng.random() < 0.5:
        encrypted = base64.b64encode(inner).decode()
    else:
        text = inner.decode("utf-8", "replace")
        encrypted = crypto.encrypt(crypto.aes_key(AES_KEY), text, APP_ID)
    return f"<xml><Encrypt>{encrypted}</Encrypt></xml>".encode(), signed(rng, encrypted)


def fuzzed_request(rng: random.Random, safe: bool) -> tuple[bytes, dict[str, str]]:
    if safe and rng.random() < 0.4:
        return signed_envelope(rng)
    body = random_body(rng)
    return body, signed(rng) if rng.random() < 0.5 else random_query(rng)


def random_query(rng: random.Random) -> dict[str, str]:
    alphabet = "abc123%&=?#\u4f60\u0000\ud7ff "
    return {
        rng.choice(["signature", "timestamp", "nonce", "echostr", "msg_signature", "x"]): "".join(
            rng.choice(alphabet) for _ in range(rng.randrange(0, 60))
        )
        for _ in range(rng.randrange(0, 6))
    }


@pytest.fixture(params=[None, AES_KEY], ids=["plain", "safe"])
async def webhook(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, bool]]:
    credentials = {
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "token": TOKEN,
        "api_base_url": "http://127.0.0.1:9",
        "aes_key": request.param,
        "allow_plain_mode": request.param is None,
        "domain_path": "/nonexistent",
    }
    channel = WeChatInput.from_credentials(credentials)
    async with serve(channel, StubBot(replies=[])) as url:
        yield url, request.param is not None
    await channel.api.close()


async def test_fuzzed_requests_get_4xx_and_the_server_keeps_serving(
    webhook: tuple[str, bool],
) -> None:
    url, safe = webhook
    rng = random.Random(20261122)
    statuses: set[int] = set()
    async with aiohttp.ClientSession() as http:
        for _ in range(150):
            body, query = fuzzed_request(rng, safe)
            headers = {"Content-Type": rng.choice(CONTENT_TYPES)}
            method = rng.choice(["POST", "POST", "GET"])
            async with http.request(method, url, params=query, data=body, headers=headers) as reply:
                await reply.read()
                statuses.add(reply.status)
                assert reply.status < 500, (method, query, body[:200])
        good = VALID.format(msg_id=1).encode()
        if safe:
            encrypted = crypto.encrypt(crypto.aes_key(AES_KEY), good.decode(), APP_ID)
            good = f"<xml><Encrypt>{encrypted}</Encrypt></xml>".encode()
            query = signed(rng, encrypted)
        else:
            query = signed(rng)
        async with http.post(url, params=query, data=good) as reply:
            assert (reply.status, await reply.text()) == (200, "success")
    assert statuses <= {200, 400, 403, 413}
