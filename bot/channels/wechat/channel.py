"""The WeChat Official Account webhook as a Rasa input channel, at /webhooks/wechat/webhook.

WeChat waits 5 s for the HTTP answer, then retries. So the bot runs in a task with a 4.5 s
deadline: in time, its first message is the passive reply and the rest go through the
customer-service API; late, the answer is "success" (which stops the retries) and the task
delivers everything through the CS API when it finishes. Retries join the first request's turn.
A push whose `timestamp` is further than `replay_window` from our clock is refused (403): a
recorded push replayed later is not WeChat's. Inside the window each signature is spent once
(nonces.py): seen again with the same push it is answered from that push's turn, never with a
second bot run; with another body it is refused (403). Without an AES key (plain mode, whose
signature does not cover the body) the channel starts only with `allow_plain_mode: true`.
Bodies over MAX_BODY_BYTES are refused (413) without being buffered, and the XML parser refuses
DTDs and entities (messages.py). Follows and unfollows change the CRM (followers.py), and a
follow through a link QR code links the OpenID first, once per token (linking.py).
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
from redis.exceptions import RedisError
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.wechat import crypto
from bot.channels.wechat.api import WeChatAPI, WeChatAPIError, WeChatOutput
from bot.channels.wechat.followers import Followers
from bot.channels.wechat.linking import InvalidLinkToken, LinkToken, read_link_token, scene_of
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
from bot.channels.wechat.nonces import (
    DatabaseNonces,
    NonceStore,
    PushNonce,
    PushNonces,
    RedisNonces,
    Sighting,
)
from bot.channels.wechat.shared import DEFAULT_PREFIX, SharedState
from bot.channels.wechat.templates import TemplateConfig
from bot.channels.wechat.turns import BotMessages, PushRun, PushRuns
from crm_store.clock import Clock, utcnow

logger = logging.getLogger(__name__)

SUCCESS = "success"  # WeChat's "no passive reply, do not retry"
PASSIVE_DEADLINE_SECONDS = 4.5
FOLLOWUP_DELAY_SECONDS = 0.5  # lets the passive reply reach WeChat before the CS messages
UNSUPPORTED_RESPONSE = "utter_unsupported_message_type"
REPLAY_WINDOW_SECONDS = 300.0
REQUIRED_KEYS = ("app_id", "app_secret", "token", "api_base_url")
LINK_EVENTS = ("subscribe", "scan")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})
PLAIN_MODE_REFUSED = (
    "the wechat channel has no aes_key: in plain mode WeChat's signature covers the token, "
    "timestamp and nonce but not the body, so whoever sees one push can post any body with its "
    "signature. Set aes_key (safe mode), or allow_plain_mode: true "
    "(CAREBOT_WECHAT_ALLOW_PLAIN_MODE=1) to accept that"
)


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
    replay_window: float = REPLAY_WINDOW_SECONDS
    template: TemplateConfig | None = None
    database_url: str | None = None
    link_secret: str | None = None
    redis_url: str | None = None
    redis_prefix: str = DEFAULT_PREFIX
    allow_plain_mode: bool = False
    forget_on_unfollow: bool = False  # erase the OpenID's history too (docs/personal-data.md)

    def __post_init__(self) -> None:
        if self.replay_window <= 0:
            raise ValueError("the wechat channel's replay_window must be positive (seconds)")
        if self.aes_key is None and not self.allow_plain_mode:
            raise ValueError(PLAIN_MODE_REFUSED)

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
            replay_window=float(credentials.get("replay_window", REPLAY_WINDOW_SECONDS)),
            template=TemplateConfig.from_credentials(credentials),
            database_url=_optional(credentials, "database_url"),
            link_secret=_optional(credentials, "link_secret"),
            redis_url=_optional(credentials, "redis_url"),
            redis_prefix=str(credentials.get("redis_prefix") or DEFAULT_PREFIX),
            allow_plain_mode=_flag(credentials, "allow_plain_mode"),
            forget_on_unfollow=_flag(credentials, "forget_on_unfollow"),
        )


def _optional(credentials: dict[str, Any], key: str) -> str | None:
    value = credentials.get(key)
    return str(value) if value else None


def _flag(credentials: dict[str, Any], key: str) -> bool:
    """A yes/no setting: YAML's booleans, or the words an environment variable carries."""
    value = credentials.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    word = str(value).strip().lower()
    if word in TRUE_WORDS | FALSE_WORDS:
        return word in TRUE_WORDS
    raise ValueError(f"the wechat channel's {key} must be true or false, not {value!r}")


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is larger than `limit`: an oversized body is
    never buffered (the route streams; Sanic discards what is left unread)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    if request.body or request.stream is None:  # already read, e.g. by a non-streaming route
        return request.body if len(request.body) <= limit else None
    chunks, size = [], 0
    while (chunk := await request.stream.read()) is not None:
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class WeChatInput(InputChannel):
    """WeChat OA pushes in plain or safe mode; replies passively or through the CS API."""

    def __init__(self, config: WeChatConfig, clock: Clock = utcnow) -> None:
        self.config = config
        self.clock = clock
        self.shared = (
            SharedState(config.redis_url, config.app_id, config.redis_prefix)
            if config.redis_url
            else None
        )
        self.api = WeChatAPI(config.api_base_url, config.app_id, config.app_secret, self.shared)
        self.turns = PushRuns()
        self.followers = Followers(
            config.database_url, clock, forget_history=config.forget_on_unfollow
        )
        self.nonces = PushNonces(self._nonce_stores(), clock)
        self._background: set[asyncio.Task[Any]] = set()
        self._on_new_message: Callable[[UserMessage], Awaitable[Any]] | None = None

    def _nonce_stores(self) -> list[NonceStore]:
        """Where spent signatures are kept: what every process shares, Redis first."""
        stores: list[NonceStore] = []
        if self.shared is not None:
            stores.append(RedisNonces(self.shared, self.clock))
        if self.config.database_url:
            stores.append(DatabaseNonces(self.followers.engine, self.clock))
        return stores

    @classmethod
    def name(cls) -> str:
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> WeChatInput:
        return cls(WeChatConfig.from_credentials(credentials or {}))

    def get_output_channel(self) -> OutputChannel | None:
        return WeChatOutput(self.api, self.config.template)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        self._on_new_message = on_new_message
        blueprint = Blueprint("wechat_webhook", __name__)

        @blueprint.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @blueprint.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            return self.verify(request)

        @blueprint.route("/webhook", methods=["POST"], stream=True)
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
        body = await read_body(request, MAX_BODY_BYTES)
        if body is None:
            return response.text("payload too large", status=413)
        sent_at = self._sent_at(request)
        if sent_at is None:
            return response.text("timestamp outside the replay window", status=403)
        try:
            inbound = self._open(request, body)
        except SignatureMismatch:
            return response.text("bad signature", status=403)
        except (MalformedMessage, crypto.CryptoError) as error:
            return response.text(f"malformed message: {error}", status=400)
        sighting = await self.nonces.spend(self._push_nonce(request, inbound, sent_at))
        if sighting is Sighting.OTHER_PUSH:
            logger.warning("wechat push from %s: its signature was used before", inbound.from_user)
            return response.text("signature already used", status=403)
        answer = await self._answer(inbound, started, replayed=sighting is Sighting.SAME_PUSH)
        return self._http_reply(request, answer)

    def _sent_at(self, request: Request) -> int | None:
        """The push's timestamp if it is within the replay window of our clock, else None."""
        try:
            sent = int(request.args.get("timestamp", ""))
        except ValueError:
            return None
        fresh = abs(self.clock().timestamp() - sent) <= self.config.replay_window
        return sent if fresh else None

    def _push_nonce(self, request: Request, inbound: InboundMessage, sent_at: int) -> PushNonce:
        """The push's verified signature (with its timestamp and nonce) and the push itself."""
        signed = "signature" if self.config.aes_key is None else "msg_signature"
        args = request.args
        query = (args.get("timestamp", ""), args.get("nonce", ""), args.get(signed, ""))
        return PushNonce.of(
            self.config.app_id,
            query,
            dedupe_key=inbound.dedupe_key,
            sent_at=sent_at,
            window=self.config.replay_window,
        )

    def _open(self, request: Request, body: bytes) -> InboundMessage:
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
            timestamp, nonce = str(int(self.clock().timestamp())), request.args.get("nonce", "")
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
        if event == "scan" and self.link_target(inbound) is not None:
            return "/greet"
        if event == "click":
            return self.config.menu.get(inbound.event_key)
        return None

    async def _answer(self, inbound: InboundMessage, started: float, replayed: bool) -> str:
        """The HTTP body for a push; a `replayed` one (its signature was seen with it before)
        only ever joins the push's turn and changes nothing."""
        text = self.user_text(inbound)
        if text is None:
            return self._without_bot(inbound, act=not replayed)
        if replayed:
            return await self._answer_of_replay(inbound, started)
        key = inbound.dedupe_key
        if not await self._claim(key):
            return await self._answer_of_another_process(key, self._left(started))
        turn = self.turns.get_or_start(
            key, lambda: asyncio.create_task(self._run_bot(inbound, text))
        )
        return await self._body_of(turn, inbound, started)

    async def _answer_of_replay(self, inbound: InboundMessage, started: float) -> str:
        """The body of the push's turn if one is running or remembered, else "success"."""
        logger.info("wechat push from %s seen before: no new turn", inbound.from_user)
        turn = self.turns.get(inbound.dedupe_key)
        if turn is not None:
            return await self._body_of(turn, inbound, started)
        return await self._answer_of_another_process(inbound.dedupe_key, self._left(started))

    async def _body_of(self, turn: PushRun, inbound: InboundMessage, started: float) -> str:
        """The HTTP body of a turn, decided by the first request that gets here."""
        async with turn.lock:
            if turn.body is None:
                turn.body = await self._decide(turn, inbound, self._left(started))
                await self._share_answer(inbound.dedupe_key, turn.body)
            return turn.body

    def _left(self, started: float) -> float:
        return self.config.passive_deadline - (time.monotonic() - started)

    async def _claim(self, key: str) -> bool:
        """Whether this process runs the bot for the push: always, unless Redis says another."""
        if self.shared is None or key in self.turns:
            return True
        try:
            return await self.shared.claim(key)
        except RedisError as error:
            logger.warning("wechat retry map: Redis unavailable (%s); this process only", error)
            return True

    async def _answer_of_another_process(self, key: str, timeout: float) -> str:
        """The body the process that runs this push answered, or "success" at our deadline."""
        if self.shared is None:
            return SUCCESS
        try:
            body = await self.shared.wait_for_answer(key, max(timeout, 0.0))
        except RedisError as error:
            logger.warning("wechat retry map: Redis unavailable (%s)", error)
            body = None
        return SUCCESS if body is None else body

    async def _share_answer(self, key: str, body: str) -> None:
        if self.shared is None:
            return
        try:
            await self.shared.answered(key, body)
        except RedisError as error:
            logger.warning("wechat retry map: Redis unavailable (%s)", error)

    def link_target(self, inbound: InboundMessage) -> LinkToken | None:
        """The valid link token of a follow or scan: whom to link the OpenID to."""
        event = inbound.event.lower() if inbound.msg_type == "event" else ""
        scene = scene_of(event, inbound.event_key)
        if event not in LINK_EVENTS or not scene or not self.config.link_secret:
            return None
        try:
            return read_link_token(scene, self.config.link_secret, self.clock())
        except InvalidLinkToken as error:
            logger.info("wechat %s from %s: scene ignored (%s)", event, inbound.from_user, error)
            return None

    def _without_bot(self, inbound: InboundMessage, act: bool) -> str:
        """The answer to a push the bot does not hear; `act`: unfollows change the CRM."""
        if inbound.msg_type == "event":
            logger.info("wechat event %s from %s", inbound.event, inbound.from_user)
            if act and inbound.event.lower() == "unsubscribe":
                self._spawn(self.followers.unfollow(inbound.from_user))
            return SUCCESS
        if self.config.unsupported_reply is None:
            return SUCCESS
        return text_reply(inbound, self.config.unsupported_reply)

    async def _run_bot(self, inbound: InboundMessage, text: str) -> BotMessages:
        if self._on_new_message is None:
            raise RuntimeError("the blueprint was never built")
        token = self.link_target(inbound)
        if token is not None:  # before the greeting, so its actions know the customer
            await self.followers.link(inbound.from_user, token)
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

    async def _decide(self, turn: PushRun, inbound: InboundMessage, deadline: float) -> str:
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

    async def idle(self) -> None:
        """Wait for the background work (late sends, CRM writes) to finish (tests, shutdown)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        # The loop keeps only weak references to tasks: hold them until they finish.
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
