"""The WeChat OA server API: the access token and the customer-service (客服) message send.

Every token fetch invalidates the previous token (after a 5-minute overlap) and counts against
a 2000-a-day quota, so the token lives in one cache per process, shared by every client for the
same app and API host, and is refreshed only shortly before it expires or when WeChat says it
is stale. Errors come back as HTTP 200 with an errcode; the ones a caller can act on are types:

    WeChatAPIError
    ├── TokenRefused        the token endpoint refused the app id or secret (40013, 40125, ...)
    ├── OutsideWindow       45015: no user message in 48 h, or the user unfollowed
    ├── QuotaExceeded       45047: the window's message quota is used up
    └── DailyLimitReached   45009: the app's daily API quota is used up
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

from bot.channels.wechat.messages import render_texts

logger = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 300  # the old token keeps working 5 minutes after a refresh
STALE_TOKEN_CODES = frozenset({40001, 40014, 42001})
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


ERRORS: dict[int, type[WeChatAPIError]] = {
    45015: OutsideWindow,
    45047: QuotaExceeded,
    45009: DailyLimitReached,
}


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
    """An aiohttp client for one app; its session opens on first use, inside the event loop."""

    def __init__(self, base_url: str, app_id: str, app_secret: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self._app_secret = app_secret
        self._session: aiohttp.ClientSession | None = None
        self._token_lock: asyncio.Lock | None = None

    @property
    def _token(self) -> _Token:
        return _TOKENS.setdefault((self.base_url, self.app_id), _Token())

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()

    async def access_token(self) -> str:
        """The cached token, fetched only when missing or about to expire."""
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        async with self._token_lock:
            token = self._token
            if not token.value or time.monotonic() >= token.refresh_at:
                await self._fetch_token(token)
            return token.value

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

    def _invalidate(self, stale: str) -> None:
        # Another request may already have replaced the stale token: keep the new one.
        if self._token.value == stale:
            self._token.value = ""

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body to an API path; refetch the token once if WeChat says it is stale."""
        for attempt in range(2):
            token = await self.access_token()
            payload = await self._post(path, token, body)
            if int(payload.get("errcode") or 0) in STALE_TOKEN_CODES and attempt == 0:
                self._invalidate(token)
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


class WeChatOutput(OutputChannel):
    """Rasa's output channel for WeChat: every bot message goes out through the CS API.

    Used for messages Rasa sends without a user request (trigger_intent, reminders) and for
    the replies that miss the passive-reply deadline. OutsideWindow and the quota errors reach
    the caller, which decides whether a template message is due.
    """

    def __init__(self, api: WeChatAPI) -> None:
        self.api = api

    @classmethod
    def name(cls) -> str:
        return "wechat"

    async def send_response(self, recipient_id: str, message: dict[str, Any]) -> None:
        for text in render_texts([message]):
            await self.api.send_text(recipient_id, text)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        await self.api.send_text(recipient_id, text)
