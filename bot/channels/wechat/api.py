"""The WeChat OA server API: the access token, customer-service (客服) and template messages.

Every token fetch invalidates the previous token (after a 5-minute overlap) and counts against
a 2000-a-day quota, so the token lives in one cache per process, shared by every client for the
same app and API host (or, with Redis, in one cache for every process: shared.py), and is
refreshed only shortly before it expires or when WeChat says it is stale. Errors come back as
HTTP 200 with an errcode; the ones a caller can act on are types:

    WeChatAPIError
    ├── TokenRefused        the token endpoint refused the app id or secret (40013, 40125, ...)
    ├── OutsideWindow       45015: no user message in 48 h, or the user unfollowed
    ├── QuotaExceeded       45047: the window's message quota is used up
    ├── DailyLimitReached   45009: the app's daily API quota is used up
    └── Unfollowed          43004: the user does not follow the account (template messages)

`WeChatOutput` turns every failure into one `DeliveryFailed`, whose text says why. The errcodes
are wechatpy's names (`WeChatErrorCode`); its `WeChatClient` does not fit (docs/wechat.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from rasa.core.channels.channel import OutputChannel
from redis.exceptions import RedisError
from wechatpy.constants import WeChatErrorCode as Code

from bot.channels.wechat.messages import render_texts, split_text
from bot.channels.wechat.shared import LOCK_TTL_SECONDS, POLL_SECONDS, SharedState
from bot.channels.wechat.templates import TemplateConfig

logger = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 300  # the old token keeps working 5 minutes after a refresh
STALE_TOKEN_CODES = frozenset(
    {Code.INVALID_CREDENTIAL, Code.INVALID_ACCESS_TOKEN, Code.EXPIRED_ACCESS_TOKEN}
)  # 40001, 40014, 42001
REQUEST_TIMEOUT_SECONDS = 10


class WeChatAPIError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class TokenRefused(WeChatAPIError):
    """The token endpoint refused the credentials; retrying will not help."""


class OutsideWindow(WeChatAPIError):
    """45015: outside the 48-hour window, or the user unfollowed; use a template message."""


class QuotaExceeded(WeChatAPIError):
    """45047: the messages allowed in this window are used up."""


class DailyLimitReached(WeChatAPIError):
    """45009: the app's daily quota for this API is used up."""


class Unfollowed(WeChatAPIError):
    """43004: the user does not follow the account, so no template message reaches them."""


ERRORS: dict[int, type[WeChatAPIError]] = {
    Code.OUT_OF_RESPONSE_TIME_LIMIT: OutsideWindow,  # 45015
    Code.OUT_OF_RESPONSE_COUNT_LIMIT: QuotaExceeded,  # 45047
    Code.OUT_OF_API_FREQ_LIMIT: DailyLimitReached,  # 45009
    Code.REQUIRE_SUBSCRIBE: Unfollowed,  # 43004
}
CS_CLOSED = (OutsideWindow, QuotaExceeded)  # the CS API refuses this user; a template may not


class DeliveryFailed(Exception):
    """A bot message did not reach the WeChat user; the text says why (for the caller's log).

    `errcode` is WeChat's, when WeChat refused the message (None: WeChat was not reached).
    """

    def __init__(self, message: str, errcode: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode

    @property
    def expected(self) -> bool:
        """WeChat refused this message for a reason of the user's or the day's, which the care
        scheduler handles (it keeps the message and tries later: bot/care/dispatch.py). Anything
        else (an unknown openid, a malformed message, refused credentials, WeChat unreachable)
        says something is wrong here."""
        return self.errcode in HANDLED_ERRCODES


# The user unfollowed (43004), the customer-service window closed or its quota is used up and no
# template is configured (45015, 45047), the app's daily quota is used up (45009).
HANDLED_ERRCODES = frozenset(
    {
        Code.REQUIRE_SUBSCRIBE,
        Code.OUT_OF_API_FREQ_LIMIT,
        Code.OUT_OF_RESPONSE_TIME_LIMIT,
        Code.OUT_OF_RESPONSE_COUNT_LIMIT,
    }
)


@dataclass
class _Token:
    value: str = ""
    refresh_at: float = 0.0


# One token per (API base URL, app id) in this process; see the module docstring.
_TOKENS: dict[tuple[str, str], _Token] = {}


def forget_tokens() -> None:
    """Drop every cached token (tests, and a changed app secret)."""
    _TOKENS.clear()


def _raise_for_errcode(payload: dict[str, Any]) -> None:
    errcode = int(payload.get("errcode") or 0)
    if errcode:
        error_type = ERRORS.get(errcode, WeChatAPIError)
        raise error_type(errcode, str(payload.get("errmsg", "")))


class WeChatAPI:
    """An aiohttp client for one app; its session opens on first use, inside the event loop.

    With `shared` (Redis) the token is the one all processes share (shared.py); this client
    keeps its own copy until it nears expiry or WeChat calls it stale.
    """

    def __init__(
        self, base_url: str, app_id: str, app_secret: str, shared: SharedState | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._app_secret = app_secret
        self.shared = shared
        self._own_token = _Token()
        self._session: aiohttp.ClientSession | None = None
        self._token_lock: asyncio.Lock | None = None

    @property
    def _token(self) -> _Token:
        if self.shared is not None:
            return self._own_token
        return _TOKENS.setdefault((self.base_url, self.app_id), _Token())

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def close(self) -> None:
        """Close the HTTP session (and the Redis connections)."""
        if self._session is not None:
            await self._session.close()
        if self.shared is not None:
            await self.shared.close()

    async def access_token(self) -> str:
        """The cached token, fetched only when missing or about to expire."""
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        async with self._token_lock:
            token = self._token
            if token.value and time.monotonic() < token.refresh_at:
                return token.value
            if self.shared is None:
                await self._fetch_token(token)
            else:
                await self._shared_token(token, self.shared)
            return token.value

    async def _shared_token(self, token: _Token, shared: SharedState) -> None:
        """The token in Redis, else fetched by whichever process takes the lock first."""
        try:
            deadline = time.monotonic() + 2 * LOCK_TTL_SECONDS
            while not await self._stored_token(token, shared):
                owner = await shared.lock_token()
                if owner is not None:
                    await self._fetch_and_share(token, shared, owner)
                    return
                if time.monotonic() > deadline:
                    raise WeChatAPIError(-1, "no access token appeared in Redis")
                await asyncio.sleep(POLL_SECONDS)
        except RedisError as error:
            logger.warning("wechat token: Redis unavailable (%s); fetching our own", error)
            if not token.value or time.monotonic() >= token.refresh_at:
                await self._fetch_token(token)

    async def _stored_token(self, token: _Token, shared: SharedState) -> bool:
        stored = await shared.token()
        if stored is None:
            return False
        token.value, token.refresh_at = stored[0], time.monotonic() + stored[1]
        return True

    async def _fetch_and_share(self, token: _Token, shared: SharedState, owner: str) -> None:
        try:
            if await self._stored_token(token, shared):  # stored while we took the lock
                return
            await self._fetch_token(token)
            await shared.put_token(token.value, token.refresh_at - time.monotonic())
        finally:
            await shared.unlock_token(owner)

    async def _fetch_token(self, token: _Token) -> None:
        params = {
            "grant_type": "client_credential",
            "appid": self.app_id,
            "secret": self._app_secret,
        }
        async with self._client().get(f"{self.base_url}/cgi-bin/token", params=params) as reply:
            payload = await reply.json(content_type=None)
        if not isinstance(payload, dict) or "access_token" not in payload:
            errcode = int(payload.get("errcode") or -1) if isinstance(payload, dict) else -1
            raise TokenRefused(errcode, str(payload))
        lifetime = int(payload.get("expires_in") or 7200)
        token.value = str(payload["access_token"])
        token.refresh_at = time.monotonic() + max(lifetime - REFRESH_MARGIN_SECONDS, 0)

    async def _invalidate(self, stale: str) -> None:
        # Another request may already have replaced the stale token: keep the new one.
        if self._token.value == stale:
            self._token.value = ""
        if self.shared is not None:
            try:
                await self.shared.drop_token(stale)
            except RedisError as error:
                logger.warning("wechat token: Redis unavailable (%s)", error)

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body to an API path; refetch the token once if WeChat says it is stale."""
        for attempt in range(2):
            token = await self.access_token()
            payload = await self._post(path, token, body)
            if int(payload.get("errcode") or 0) in STALE_TOKEN_CODES and attempt == 0:
                await self._invalidate(token)
                continue
            _raise_for_errcode(payload)
            return payload
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post(self, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body, ensure_ascii=False).encode()  # WeChat shows \uXXXX escapes
        url = f"{self.base_url}{path}"
        headers = {"Content-Type": "application/json; charset=utf-8"}
        async with self._client().post(
            url, params={"access_token": token}, data=data, headers=headers
        ) as reply:
            payload = await reply.json(content_type=None)
        return payload if isinstance(payload, dict) else {"errcode": -1, "errmsg": str(payload)}

    async def send_text(self, openid: str, text: str) -> None:
        """Send a text through the customer-service API (inside the user's 48-hour window)."""
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        await self.call("/cgi-bin/message/custom/send", body)

    async def send_template(self, body: dict[str, Any]) -> None:
        """Send a template message (any time, to a follower); `body` as TemplateConfig builds it."""
        await self.call("/cgi-bin/message/template/send", body)


class WeChatOutput(OutputChannel):
    """Rasa's output channel for WeChat: the CS API, and a template message when it refuses.

    Used for messages Rasa sends without a user request (trigger_intent, reminders). When the
    CS API answers 45015 (outside the window) or 45047 (quota used up) and a template is
    configured, the text goes out as a template message, and so does every later message of
    this output to that user: the CS API is not asked again. Anything else that stops a
    message (45009, 43004, no template, network) is logged and raised as DeliveryFailed, so
    Rasa answers the HTTP caller (trigger_intent: the scheduler) a 500 that carries the reason.
    """

    def __init__(self, api: WeChatAPI, template: TemplateConfig | None = None) -> None:
        self.api = api
        self.template = template
        self._cs_closed: set[str] = set()  # users the CS API refused during this output

    @classmethod
    def name(cls) -> str:
        return "wechat"

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        for text in render_texts([message]):
            await self.deliver(recipient_id, text)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        for piece in split_text(text):
            await self.deliver(recipient_id, piece)

    async def deliver(self, openid: str, text: str) -> None:
        """Send one text by whichever route WeChat allows now; DeliveryFailed if none does."""
        try:
            await self._deliver(openid, text)
        except (WeChatAPIError, aiohttp.ClientError, asyncio.TimeoutError) as error:
            reason = _reason(error, self.template)
            errcode = error.errcode if isinstance(error, WeChatAPIError) else None
            failure = DeliveryFailed(f"wechat delivery to {openid} failed: {reason}", errcode)
            # the caller learns it from the exception; a refusal it handles is no ERROR
            level = logging.WARNING if failure.expected else logging.ERROR
            logger.log(level, "wechat delivery to %s failed: %s", openid, reason)
            raise failure from error

    async def _deliver(self, openid: str, text: str) -> None:
        template = self.template
        if template is None:
            await self.api.send_text(openid, text)
            return
        if openid not in self._cs_closed:
            try:
                await self.api.send_text(openid, text)
                return
            except CS_CLOSED as error:
                logger.info("wechat CS API refused %s (%s): template message", openid, error)
                self._cs_closed.add(openid)
        await self.api.send_template(template.body(openid, text))


def _reason(error: Exception, template: TemplateConfig | None) -> str:
    if isinstance(error, CS_CLOSED) and template is None:
        return f"{error}; no template message is configured (template_id)"
    if isinstance(error, aiohttp.ClientResponseError):
        # its text names the URL, whose query carries the access token: never log that
        return f"{type(error).__name__} {error.status}"
    return str(error) or type(error).__name__
