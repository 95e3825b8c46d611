"""The WeChat Official Account webhook as a Rasa input channel, at /webhooks/wechat/webhook.

WeChat waits 5 s for the HTTP answer, then retries. So the bot runs in a task with a 4.5 s
deadline: in time, its first message is the passive reply and the rest go through the
customer-service API; late, the answer is "success" (which stops the retries) and the task
delivers everything through the CS API when it finishes. Retries join the first request's turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from rasa.core.channels.channel import (
    CollectingOutputChannel,
    InputChannel,
    OutputChannel,
    UserMessage,
)
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.wechat import crypto
from bot.channels.wechat.api import WeChatAPI, WeChatAPIError, WeChatOutput
from bot.channels.wechat.messages import (
    MAX_BODY_BYTES,
    InboundMessage,
    MalformedMessage,
    encrypted_reply,
    parse_fields,
    parse_message,
    render_texts,
    text_reply,
)
from bot.channels.wechat.turns import BotMessages, Turn, Turns

logger = logging.getLogger(__name__)

SUCCESS = "success"  # WeChat's "no passive reply, do not retry"
PASSIVE_DEADLINE_SECONDS = 4.5
FOLLOWUP_DELAY_SECONDS = 0.5  # lets the passive reply reach WeChat before the CS messages
UNSUPPORTED_RESPONSE = "utter_unsupported_message_type"
REQUIRED_KEYS = ("app_id", "app_secret", "token", "api_base_url")


class SignatureMismatch(Exception):
    """The push is not signed with our token."""


def load_response_text(domain_path: Path, response_name: str) -> str | None:
    """The first text variant of a domain response, or None when the domain lacks it."""
    try:
        domain = yaml.safe_load(domain_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    responses = domain.get("responses") if isinstance(domain, dict) else None
    variants = responses.get(response_name) if isinstance(responses, dict) else None
    for variant in variants if isinstance(variants, list) else []:
        if isinstance(variant, dict) and isinstance(variant.get("text"), str):
            return str(variant["text"])
    return None


@dataclass(frozen=True)
class WeChatConfig:
    """The channel's credentials.yml section; aes_key switches on safe mode."""

    app_id: str
    app_secret: str
    token: str
    api_base_url: str
    aes_key: bytes | None = None
    menu: dict[str, str] = field(default_factory=dict)
    unsupported_reply: str | None = None
    passive_deadline: float = PASSIVE_DEADLINE_SECONDS

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any]) -> WeChatConfig:
        """The config, refusing a section without the keys WeChat needs."""
        missing = [key for key in REQUIRED_KEYS if not credentials.get(key)]
        if missing:
            raise ValueError(f"credentials for the wechat channel lack {', '.join(missing)}")
        aes_key, menu = credentials.get("aes_key"), credentials.get("menu") or {}
        if not isinstance(menu, dict):
            raise ValueError("the wechat channel's menu must map menu keys to messages")
        domain_path = Path(str(credentials.get("domain_path") or "domain.yml"))
        return cls(
            **{key: str(credentials[key]) for key in REQUIRED_KEYS},
            aes_key=crypto.aes_key(str(aes_key)) if aes_key else None,
            menu={str(key): str(intent) for key, intent in menu.items()},
            unsupported_reply=load_response_text(domain_path, UNSUPPORTED_RESPONSE),
            passive_deadline=float(credentials.get("passive_deadline", PASSIVE_DEADLINE_SECONDS)),
        )


class WeChatInput(InputChannel):
    """WeChat OA pushes in plain or safe mode; replies passively or through the CS API."""

    def __init__(self, config: WeChatConfig) -> None:
        self.config = config
        self.api = WeChatAPI(config.api_base_url, config.app_id, config.app_secret)
        self.turns = Turns()
        self._background: set[asyncio.Task[Any]] = set()
        self._on_new_message: Callable[[UserMessage], Awaitable[Any]] | None = None

    @classmethod
    def name(cls) -> str:
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WeChatInput:
        return cls(WeChatConfig.from_credentials(credentials or {}))

    def get_output_channel(self) -> OutputChannel | None:
        return WeChatOutput(self.api)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        self._on_new_message = on_new_message
        blueprint = Blueprint("wechat_webhook", __name__)

        @blueprint.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @blueprint.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            return self.verify(request)

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return await self.receive(request)

        return blueprint

    # --- HTTP -----------------------------------------------------------------------------

    def _signed(self, request: Request, expected: str, *extra: str) -> bool:
        timestamp, nonce = request.args.get("timestamp", ""), request.args.get("nonce", "")
        return crypto.check_signature(expected, self.config.token, timestamp, nonce, *extra)

    def verify(self, request: Request) -> HTTPResponse:
        """WeChat's URL check: echo `echostr` when the signature is ours."""
        if not self._signed(request, request.args.get("signature", "")):
            return response.text("bad signature", status=403)
        return response.text(request.args.get("echostr", ""))

    async def receive(self, request: Request) -> HTTPResponse:
        """A push: refuse what is not WeChat's, answer the rest within the deadline."""
        started = time.monotonic()
        if len(request.body or b"") > MAX_BODY_BYTES:
            return response.text("payload too large", status=413)
        try:
            inbound = self._open(request)
        except SignatureMismatch:
            return response.text("bad signature", status=403)
        except (MalformedMessage, crypto.CryptoError) as error:
            return response.text(f"malformed message: {error}", status=400)
        body = await self._answer(inbound, started)
        return self._http_reply(request, body)

    def _open(self, request: Request) -> InboundMessage:
        body = request.body or b""
        if self.config.aes_key is None:
            if not self._signed(request, request.args.get("signature", "")):
                raise SignatureMismatch
            return parse_message(body)
        encrypted = parse_fields(body).get("Encrypt", "")
        if not encrypted:
            raise MalformedMessage("safe mode needs an Encrypt element")
        if not self._signed(request, request.args.get("msg_signature", ""), encrypted):
            raise SignatureMismatch
        plain = crypto.decrypt(self.config.aes_key, encrypted, self.config.app_id)
        return parse_message(plain.encode())

    def _http_reply(self, request: Request, body: str) -> HTTPResponse:
        if body == SUCCESS:
            return response.text(SUCCESS)
        if self.config.aes_key is not None:
            timestamp, nonce = str(int(time.time())), request.args.get("nonce", "")
            encrypted = crypto.encrypt(self.config.aes_key, body, self.config.app_id)
            signed = crypto.signature(self.config.token, timestamp, nonce, encrypted)
            body = encrypted_reply(encrypted, signed, timestamp, nonce)
        return response.text(body, content_type="application/xml; charset=utf-8")

    # --- turns ----------------------------------------------------------------------------

    def user_text(self, inbound: InboundMessage) -> str | None:
        """What the bot hears for a push, or None when the push does not reach the bot."""
        if inbound.msg_type == "text":
            return inbound.content or None
        event = inbound.event.lower() if inbound.msg_type == "event" else ""
        if event == "subscribe":
            return "/greet"
        if event == "click":
            return self.config.menu.get(inbound.event_key)
        return None

    async def _answer(self, inbound: InboundMessage, started: float) -> str:
        text = self.user_text(inbound)
        if text is None:
            return self._without_bot(inbound)
        turn = self.turns.get_or_start(
            inbound.dedupe_key, lambda: asyncio.create_task(self._run_bot(inbound, text))
        )
        deadline = self.config.passive_deadline - (time.monotonic() - started)
        async with turn.lock:
            if turn.body is None:
                turn.body = await self._decide(turn, inbound, deadline)
            return turn.body

    def _without_bot(self, inbound: InboundMessage) -> str:
        if inbound.msg_type == "event":
            logger.info("wechat event %s from %s", inbound.event, inbound.from_user)
            return SUCCESS
        if self.config.unsupported_reply is None:
            return SUCCESS
        return text_reply(inbound, self.config.unsupported_reply)

    async def _run_bot(self, inbound: InboundMessage, text: str) -> BotMessages:
        if self._on_new_message is None:
            raise RuntimeError("the blueprint was never built")
        collector = CollectingOutputChannel()
        metadata = {
            "channel": self.name(),
            "wechat": {"msg_type": inbound.msg_type, "event": inbound.event},
        }
        await self._on_new_message(
            UserMessage(
                text,
                collector,
                sender_id=inbound.from_user,
                input_channel=self.name(),
                metadata=metadata,
            )
        )
        return collector.messages

    async def _decide(self, turn: Turn, inbound: InboundMessage, deadline: float) -> str:
        """The passive reply when the bot answers in time, else "success" and a later send."""
        try:
            messages = await asyncio.wait_for(asyncio.shield(turn.task), max(deadline, 0.0))
        except asyncio.TimeoutError:
            turn.task.add_done_callback(lambda task: self._deliver_late(task, inbound.from_user))
            return SUCCESS
        except Exception:
            logger.exception("the bot failed on a wechat message from %s", inbound.from_user)
            return SUCCESS
        texts = render_texts(messages)
        if not texts:
            return SUCCESS
        if texts[1:]:
            self._spawn(self._send_texts(inbound.from_user, texts[1:], FOLLOWUP_DELAY_SECONDS))
        return text_reply(inbound, texts[0])

    def _deliver_late(self, task: asyncio.Task[BotMessages], openid: str) -> None:
        error = None if task.cancelled() else task.exception()
        if task.cancelled() or error is not None:
            logger.error("the bot failed on a wechat message from %s", openid, exc_info=error)
            return
        self._spawn(self._send_texts(openid, render_texts(task.result()), 0.0))

    async def _send_texts(self, openid: str, texts: list[str], delay: float) -> None:
        await asyncio.sleep(delay)
        for text in texts:
            try:
                await self.api.send_text(openid, text)
            except (WeChatAPIError, aiohttp.ClientError, asyncio.TimeoutError) as error:
                logger.warning("wechat CS send to %s failed: %s", openid, error)
                return

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        # The loop keeps only weak references to tasks: hold them until they finish.
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
