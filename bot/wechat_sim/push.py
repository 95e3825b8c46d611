"""Pushes to the bot's webhook as WeChat sends them, and the passive replies they get back.

A push is signed over the Token (and, in safe mode, encrypted for the app id and signed again
with msg_signature). WeChat waits `push_timeout_s` for the answer, then drops the connection and
sends the very same request again, `push_attempts` times in all. An answer of "success" or an
empty body means no passive reply; anything else must be a valid (in safe mode encrypted)
reply XML, or the user sees WeChat's "该公众号暂时无法提供服务" notice.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.channels.wechat import crypto
from bot.channels.wechat.messages import MalformedMessage, parse_fields
from bot.wechat_sim.config import SimConfig

NO_REPLY = ("", "success")


@dataclass(frozen=True)
class Attempt:
    number: int
    outcome: str  # "answered", "timeout" or "unreachable"
    elapsed_s: float
    status: int | None = None
    body: str = ""


@dataclass(frozen=True)
class PassiveReply:
    """What the bot answered: nothing, a reply message, or something WeChat rejects."""

    msg_type: str | None = None  # None: no reply
    content: str = ""
    error: str = ""  # why WeChat would show its failure notice instead

    @property
    def failed(self) -> bool:
        return bool(self.error)


@dataclass(frozen=True)
class SignedPush:
    params: dict[str, str]
    body: bytes
    nonce: str


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(fields: dict[str, str | int]) -> str:
    """A flat WeChat XML document; strings in CDATA, integers bare, as WeChat writes them."""
    inner = "".join(
        f"<{name}>{value if isinstance(value, int) else _cdata(value)}</{name}>"
        for name, value in fields.items()
    )
    return f"<xml>{inner}</xml>"


def sign(config: SimConfig, plain_xml: str, timestamp: int, openid: str) -> SignedPush:
    """The query string and body of a push, in plain or safe mode."""
    nonce = str(secrets.randbelow(10**10))
    params = {
        "signature": crypto.signature(config.token, str(timestamp), nonce),
        "timestamp": str(timestamp),
        "nonce": nonce,
        "openid": openid,
    }
    key = config.aes_key_bytes
    if key is None:
        return SignedPush(params, plain_xml.encode(), nonce)
    encrypted = crypto.encrypt(key, plain_xml, config.app_id)
    params["encrypt_type"] = "aes"
    params["msg_signature"] = crypto.signature(config.token, str(timestamp), nonce, encrypted)
    body = message_xml({"ToUserName": config.original_id, "Encrypt": encrypted})
    return SignedPush(params, body.encode(), nonce)


async def deliver(
    session: aiohttp.ClientSession, config: SimConfig, push: SignedPush
) -> list[Attempt]:
    """Sends the push until the bot answers, at most `push_attempts` times."""
    attempts: list[Attempt] = []
    for number in range(1, config.push_attempts + 1):
        attempt = await _attempt(session, config, push, number)
        attempts.append(attempt)
        if attempt.outcome == "answered":
            break
    return attempts


async def _attempt(
    session: aiohttp.ClientSession, config: SimConfig, push: SignedPush, number: int
) -> Attempt:
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=config.push_timeout_s)
    headers = {"Content-Type": "text/xml"}
    try:
        async with session.post(
            config.webhook_url, params=push.params, data=push.body, headers=headers, timeout=timeout
        ) as answer:
            body = await answer.text()
        outcome, status = "answered", answer.status
    except asyncio.TimeoutError:
        outcome, status, body = "timeout", None, ""
    except aiohttp.ClientError as failure:
        outcome, status, body = "unreachable", None, str(failure)
    return Attempt(number, outcome, round(time.monotonic() - started, 3), status, body)


def read_reply(config: SimConfig, attempt: Attempt | None, openid: str) -> PassiveReply:
    """The passive reply in the last attempt's answer, judged as WeChat judges it."""
    if attempt is None or attempt.outcome == "timeout":
        return PassiveReply(error="no answer within the deadline")
    if attempt.outcome == "unreachable":
        return PassiveReply(error=f"the bot's webhook is unreachable: {attempt.body}")
    if attempt.status != 200:
        return PassiveReply(error=f"HTTP {attempt.status}")
    body = attempt.body.strip()
    if body in NO_REPLY:
        return PassiveReply()
    try:
        fields = parse_fields(_opened(config, body).encode())
    except (MalformedMessage, crypto.CryptoError) as failure:
        return PassiveReply(error=f"malformed reply: {failure}")
    return _checked(fields, config, openid)


def _opened(config: SimConfig, body: str) -> str:
    """A safe-mode reply decrypted after its signature is checked; a plain one as it is."""
    key = config.aes_key_bytes
    if key is None:
        return body
    envelope = parse_fields(body.encode())
    encrypted = envelope.get("Encrypt", "")
    parts = (config.token, envelope.get("TimeStamp", ""), envelope.get("Nonce", ""), encrypted)
    if not encrypted or not crypto.check_signature(envelope.get("MsgSignature", ""), *parts):
        raise crypto.CryptoError("the reply is not encrypted and signed with our token")
    return crypto.decrypt(key, encrypted, config.app_id)


def _checked(fields: dict[str, str], config: SimConfig, openid: str) -> PassiveReply:
    if fields.get("ToUserName") != openid or fields.get("FromUserName") != config.original_id:
        return PassiveReply(error="the reply's ToUserName/FromUserName are not swapped")
    msg_type = fields.get("MsgType", "")
    if msg_type == "text" and not fields.get("Content"):
        return PassiveReply(error="a text reply without Content")
    return PassiveReply(msg_type=msg_type or None, content=fields.get("Content", ""))


async def verify_url(
    session: aiohttp.ClientSession, config: SimConfig, timestamp: int
) -> dict[str, Any]:
    """The OA console's check of the server URL: a signed GET that must echo `echostr`."""
    nonce, echostr = str(secrets.randbelow(10**10)), str(secrets.randbelow(10**19))
    params = {
        "signature": crypto.signature(config.token, str(timestamp), nonce),
        "timestamp": str(timestamp),
        "nonce": nonce,
        "echostr": echostr,
    }
    timeout = aiohttp.ClientTimeout(total=config.push_timeout_s)
    try:
        async with session.get(config.webhook_url, params=params, timeout=timeout) as answer:
            body, status = await answer.text(), answer.status
    except (asyncio.TimeoutError, aiohttp.ClientError) as failure:
        return {"ok": False, "status": None, "error": str(failure) or type(failure).__name__}
    ok = status == 200 and body == echostr
    return {"ok": ok, "status": status, "error": "" if ok else "echostr not echoed"}


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "attempt": attempt.number,
        "outcome": attempt.outcome,
        "status": attempt.status,
        "elapsed_s": attempt.elapsed_s,
    }
