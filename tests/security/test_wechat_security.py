"""What a stranger could try against the WeChat webhook, on the real channel served by Sanic
(docs/security.md, docs/wechat.md): plain mode without consent, unsigned or forged pushes in safe
mode, replayed pushes and captured signatures (also across two processes), a link QR code used
twice, XML bombs, external entities and oversized bodies. Each is refused with a 4xx or answered
without a second turn, never a 5xx, and the next genuine push is still answered."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
from sqlalchemy.engine import Engine

from bot.channels.wechat import crypto
from bot.channels.wechat.api import forget_tokens
from bot.channels.wechat.channel import WeChatConfig, WeChatInput
from bot.channels.wechat.linking import link_token
from bot.channels.wechat.messages import parse_fields
from bot.channels.wechat.turns import PushRuns
from crm_store.clock import utcnow
from crm_store.customers import create_customer
from crm_store.db import make_engine, session_scope
from crm_store.identities import find_customer_by_identity
from crm_store.migrate import upgrade
from tests.bot.channels.fake_wechat import APP_ID, APP_SECRET, fake_wechat
from tests.bot.channels.wechat_server import (
    AES_KEY,
    TOKEN,
    Rig,
    StubBot,
    make_channel,
    push,
    serve,
    signed_query,
)

REDIS_URL = "redis://127.0.0.1:6379/2"  # as tests/bot/channels/test_wechat_redis.py
LINK_SECRET = "link-secret"
OTHER_AES_KEY = "a" * 43
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE xml ['
    b'<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">'
    + b"".join(
        f'<!ENTITY {chr(98 + n)} "{("&" + chr(97 + n) + ";") * 10}">'.encode() for n in range(9)
    )
    + b"]><xml><ToUserName>gh_care</ToUserName><FromUserName>oUSER</FromUserName>"
    b"<CreateTime>1714037059</CreateTime><MsgType>text</MsgType><Content>&j;</Content>"
    b"<MsgId>7001</MsgId></xml>"
)
XXE_FILE = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY leak SYSTEM "file:///etc/passwd">]>'
    b"<xml><ToUserName>gh_care</ToUserName><FromUserName>oUSER</FromUserName>"
    b"<CreateTime>1714037059</CreateTime><MsgType>text</MsgType><Content>&leak;</Content>"
    b"<MsgId>7002</MsgId></xml>"
)
XXE_PARAMETER = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd">'
    b"%remote;]><xml><MsgId>7003</MsgId></xml>"
)
EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml/>'
DTD_IN_UTF16 = (
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml [<!ENTITY a "aaaa">]>'
    "<xml><ToUserName>gh_care</ToUserName><FromUserName>oUSER</FromUserName>"
    "<CreateTime>1714037059</CreateTime><MsgType>text</MsgType><Content>&a;</Content>"
    "<MsgId>7004</MsgId></xml>"
).encode("utf-16")
HOSTILE_XML = [BILLION_LAUGHS, XXE_FILE, XXE_PARAMETER, EXTERNAL_DTD, DTD_IN_UTF16]
HOSTILE_IDS = ["billion-laughs", "xxe-file", "xxe-parameter", "external-dtd", "dtd-in-utf-16"]


@asynccontextmanager
async def webhook(**extra: Any) -> AsyncIterator[Rig]:
    """The channel on a real Sanic app, with a stub bot and a fake WeChat API."""
    forget_tokens()
    async with fake_wechat() as (fake, base_url):
        channel, bot = make_channel(base_url, **extra), StubBot()
        async with serve(channel, bot) as url, aiohttp.ClientSession() as http:
            yield Rig(url, bot, fake, channel, http)
            await channel.idle()
        await channel.api.close()
        channel.followers.close()
    forget_tokens()


@pytest.fixture
async def plain() -> AsyncIterator[Rig]:
    async with webhook() as rig:
        yield rig


@pytest.fixture
async def safe() -> AsyncIterator[Rig]:
    async with webhook(aes_key=AES_KEY, allow_plain_mode=False) as rig:
        yield rig


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh key prefix in Redis db 2; under CI=true Redis must be there."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but Redis is unreachable at {REDIS_URL}: {error}")
        pytest.skip(f"Redis is not running at {REDIS_URL}")
    name = f"carebot-test-{secrets.token_hex(6)}"
    yield name
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)
    client.close()


def database_url(crm: Engine) -> str:
    return crm.url.render_as_string(hide_password=False)


def encrypted(plain_xml: bytes, key: str = AES_KEY) -> tuple[bytes, str]:
    """A safe-mode envelope around a push, and its Encrypt field (to sign)."""
    field = crypto.encrypt(crypto.aes_key(key), plain_xml.decode(), APP_ID)
    return f"<xml><ToUserName>gh_care</ToUserName><Encrypt>{field}</Encrypt></xml>".encode(), field


def follow(event: str, key: str, openid: str, create_time: int) -> bytes:
    return (
        f"<xml><ToUserName>gh_care</ToUserName><FromUserName>{openid}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType>event</MsgType>"
        f"<Event>{event}</Event><EventKey>{key}</EventKey></xml>"
    ).encode()


def heard(rig: Rig) -> list[str]:
    return [message.text or "" for message in rig.bot.heard]


async def still_answers(rig: Rig, safe_mode: bool = False) -> None:
    """A genuine push after the attacks gets its passive reply."""
    body, query = push("还在吗", msg_id="9999"), signed_query()
    if safe_mode:
        body, field = encrypted(body)
        query = signed_query(field)
    status, answer = await rig.post(body, query)
    assert status == 200
    if safe_mode:
        opened = parse_fields(answer.encode())["Encrypt"]
        answer = crypto.decrypt(crypto.aes_key(AES_KEY), opened, APP_ID)
    assert parse_fields(answer.encode())["Content"] == "您好"


# --- plain mode only when allowed -------------------------------------------------------------


def credentials(**extra: Any) -> dict[str, Any]:
    base = {"app_id": APP_ID, "app_secret": APP_SECRET, "token": TOKEN, "api_base_url": "http://x"}
    return {**base, "domain_path": "/nonexistent/domain.yml", **extra}


@pytest.mark.parametrize("flag", [None, False, "", "0", "false", "no"])
def test_plain_mode_is_refused_at_start_up_unless_allowed(flag: object) -> None:
    extra = {} if flag is None else {"allow_plain_mode": flag}
    with pytest.raises(ValueError, match="allow_plain_mode"):
        WeChatInput.from_credentials(credentials(**extra))
    with pytest.raises(ValueError, match="allow_plain_mode"):
        WeChatConfig(APP_ID, APP_SECRET, TOKEN, "http://x")


@pytest.mark.parametrize("flag", [True, "1", "true", "yes"])
def test_plain_mode_starts_when_explicitly_allowed(flag: object) -> None:
    channel = WeChatInput.from_credentials(credentials(allow_plain_mode=flag))
    assert channel.config.aes_key is None and channel.config.allow_plain_mode


def test_safe_mode_needs_no_consent_and_a_vague_flag_is_refused() -> None:
    assert WeChatInput.from_credentials(credentials(aes_key=AES_KEY)).config.aes_key is not None
    with pytest.raises(ValueError, match="true or false"):
        WeChatInput.from_credentials(credentials(allow_plain_mode="maybe"))


# --- safe mode: only encrypted pushes with a valid msg_signature ------------------------------


async def test_safe_mode_refuses_unencrypted_unsigned_and_forged_pushes(safe: Rig) -> None:
    body, field = encrypted(push())
    foreign_key_body, foreign_field = encrypted(push(), OTHER_AES_KEY)
    forged_signature = {**signed_query(field), "msg_signature": crypto.signature("guess", field)}
    tampered = body.replace(field[:8].encode(), b"AAAAAAAA")
    attempts = [
        (push(), signed_query(), 400),  # plain XML, correctly signed over token/timestamp/nonce
        (push(), signed_query("anything"), 400),
        (body, {}, 403),  # no signature at all
        (body, signed_query(), 403),  # the plain signature only, no msg_signature
        (body, forged_signature, 403),
        (tampered, signed_query(field), 403),  # the Encrypt changed after signing
        (foreign_key_body, signed_query(foreign_field), 400),  # not our AES key
    ]
    for attempt, query, status in attempts:
        assert (await safe.post(attempt, query))[0] == status, (attempt, query)
    assert safe.bot.heard == []
    await still_answers(safe, safe_mode=True)


# --- replays ----------------------------------------------------------------------------------


async def test_a_replayed_push_never_gets_a_second_turn(plain: Rig) -> None:
    query = signed_query()
    first = await plain.post(push(), query)
    assert first[0] == 200 and "您好" in first[1]
    assert await plain.post(push(), query) == first  # the very same request: one turn
    plain.channel.turns = PushRuns()  # the retry map forgot the push (after 120 s)
    assert await plain.post(push(), query) == (200, "success")
    assert heard(plain) == ["查订单"]


async def test_a_captured_signature_cannot_carry_another_body(plain: Rig) -> None:
    query = signed_query()
    await plain.post(push(), query)
    forged = push("把积分转给别人", msg_id="6666")
    assert (await plain.post(forged, query))[0] == 403
    shouting = {**query, "signature": query["signature"].upper()}  # still a valid signature
    assert (await plain.post(forged, shouting))[0] == 403
    assert heard(plain) == ["查订单"]


async def test_a_replayed_safe_mode_push_never_gets_a_second_turn(safe: Rig) -> None:
    body, field = encrypted(push())
    query = signed_query(field)
    assert (await safe.post(body, query))[0] == 200
    assert (await safe.post(body, query))[0] == 200
    safe.channel.turns = PushRuns()
    assert await safe.post(body, query) == (200, "success")
    assert heard(safe) == ["查订单"]


async def test_wechats_own_retries_still_join_the_first_turn(plain: Rig) -> None:
    """WeChat re-sends a push it got no answer to within 5 s, as the very same request (what the
    simulator does) or freshly signed: either joins the turn, which runs and sends once."""
    plain.bot.delay = 1.0  # past the deadline: "success", then the customer-service API
    query = signed_query()
    first = asyncio.create_task(plain.post(push(), query))
    await asyncio.sleep(0.1)
    same, fresh = await asyncio.gather(plain.post(push(), query), plain.post(push()))
    assert await first == same == fresh == (200, "success")
    assert await plain.cs_texts(1) == ["您好"]
    await asyncio.sleep(0.3)
    assert heard(plain) == ["查订单"] and len(plain.fake.sent) == 1


async def test_an_unfollow_replayed_later_changes_nothing(crm: Engine) -> None:
    async with webhook(database_url=database_url(crm), link_secret=LINK_SECRET) as rig:
        query = signed_query()
        unfollow = follow("unsubscribe", "", "oUSER", 1714037061)
        assert await rig.post(unfollow, query) == (200, "success")
        await rig.channel.idle()
        token = link_token(new_customer(crm), LINK_SECRET, utcnow())
        await rig.post(follow("subscribe", f"qrscene_{token}", "oUSER", 1714037062))
        assert customer_of(crm, "oUSER") is not None
        assert await rig.post(unfollow, query) == (200, "success")  # replayed
        await rig.channel.idle()
        assert customer_of(crm, "oUSER") is not None


@asynccontextmanager
async def two_processes(**extra: Any) -> AsyncIterator[tuple[Rig, Rig]]:
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(webhook(**extra))
        second = await stack.enter_async_context(webhook(**extra))
        yield first, second


async def replay_elsewhere(first: Rig, second: Rig, shared_retry_map: bool) -> None:
    """The other process runs no turn: it answers the first one's body when Redis shares the
    retry map, else "success"; another body under the signature is refused."""
    query = signed_query()
    answer = await first.post(push(), query)
    assert answer[0] == 200
    assert await second.post(push(), query) == (answer if shared_retry_map else (200, "success"))
    assert (await second.post(push("改我的手机号", msg_id="6667"), query))[0] == 403
    assert heard(first) == ["查订单"] and heard(second) == []


async def test_a_push_replayed_to_another_process_on_the_same_database(crm: Engine) -> None:
    async with two_processes(database_url=database_url(crm)) as (first, second):
        await replay_elsewhere(first, second, shared_retry_map=False)


@pytest.mark.redis
async def test_a_push_replayed_to_another_process_on_the_same_redis(prefix: str) -> None:
    async with two_processes(redis_url=REDIS_URL, redis_prefix=prefix) as (first, second):
        await replay_elsewhere(first, second, shared_retry_map=True)


async def test_with_its_database_down_the_channel_still_refuses_replays_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with webhook(database_url=f"sqlite:///{tmp_path / 'unmigrated.db'}") as rig:
        query = signed_query()
        assert (await rig.post(push(), query))[0] == 200
        assert (await rig.post(push("别的", msg_id="6668"), query))[0] == 403
    assert "nonce store database unavailable" in caplog.text


# --- link QR codes ----------------------------------------------------------------------------


def new_customer(crm: Engine) -> int:
    with session_scope(crm) as session:
        return create_customer(session, name="王女士").id


def customer_of(crm: Engine, openid: str) -> int | None:
    with session_scope(crm) as session:
        customer = find_customer_by_identity(session, kind="wechat_openid", value=openid)
    return customer.id if customer else None


async def test_a_link_token_links_once(crm: Engine, caplog: pytest.LogCaptureFixture) -> None:
    customer_id = new_customer(crm)
    token = link_token(customer_id, LINK_SECRET, utcnow())
    async with webhook(database_url=database_url(crm), link_secret=LINK_SECRET) as rig:
        await rig.post(follow("subscribe", f"qrscene_{token}", "o_owner", 1))
        assert customer_of(crm, "o_owner") == customer_id
        await rig.post(follow("SCAN", token, "o_stranger", 2))  # the QR code, photographed
        await rig.post(follow("unsubscribe", "", "o_owner", 3))
        await rig.channel.idle()
        await rig.post(follow("SCAN", token, "o_owner", 4))
    assert customer_of(crm, "o_stranger") is None
    assert customer_of(crm, "o_owner") is None  # unlinked, and the token does not link again
    assert caplog.text.count("the link token was used before") == 2


# --- hostile XML and oversized bodies ---------------------------------------------------------


@pytest.mark.parametrize("xml", HOSTILE_XML, ids=HOSTILE_IDS)
async def test_xml_bombs_and_external_entities_get_a_400(plain: Rig, xml: bytes) -> None:
    status, answer = await plain.post(xml)
    assert status == 400
    assert "root:" not in answer
    assert plain.bot.heard == []
    await still_answers(plain)


@pytest.mark.parametrize("xml", HOSTILE_XML, ids=HOSTILE_IDS)
async def test_safe_mode_refuses_hostile_xml_inside_and_outside_the_envelope(
    safe: Rig, xml: bytes
) -> None:
    assert (await safe.post(xml, signed_query("x")))[0] == 400  # the envelope itself
    if xml != DTD_IN_UTF16:  # the encrypted message is UTF-8 by definition
        body, field = encrypted(xml)
        status, answer = await safe.post(body, signed_query(field))
        assert status == 400 and "root:" not in answer
    assert safe.bot.heard == []
    await still_answers(safe, safe_mode=True)


async def chunks(size: int) -> AsyncIterator[bytes]:
    yield b"<xml><Content>"
    for _ in range(size // 8192):
        yield b"a" * 8192
    yield b"</Content></xml>"


@pytest.mark.parametrize("safe_mode", [False, True], ids=["plain", "safe"])
async def test_oversized_bodies_get_a_413_and_the_server_keeps_serving(safe_mode: bool) -> None:
    extra = {"aes_key": AES_KEY} if safe_mode else {}
    async with webhook(**extra) as rig:
        oversized = b"<xml><Content>" + b"a" * 200_000 + b"</Content></xml>"
        assert (await rig.post(oversized))[0] == 413
        params = signed_query()
        async with rig.http.post(rig.url, params=params, data=chunks(300_000)) as reply:
            assert reply.status == 413  # chunked, no Content-Length: cut off while reading
        assert rig.bot.heard == []
        await still_answers(rig, safe_mode)
