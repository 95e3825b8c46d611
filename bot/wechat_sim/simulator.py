"""What a simulated WeChat user does: follow, click the menu, type, send a picture.

Each action updates the server's state first (a user message opens the window before the bot
can answer through the customer-service API), is logged, pushed to the bot, and its passive
reply (or WeChat's failure notice) is logged as well.

Two clocks: the simulated one (SimClock.now, which tests and the page move forward) governs
WeChat's own rules, the token lifetimes and the windows; pushes carry the real time, because the
bot compares their timestamp with its own clock.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import aiohttp

from bot.wechat_sim.config import SimConfig
from bot.wechat_sim.push import (
    PassiveReply,
    attempt_json,
    deliver,
    message_xml,
    read_reply,
    sign,
    verify_url,
)
from bot.wechat_sim.state import SimClock, SimState

EVENTS = ("subscribe", "unsubscribe", "CLICK")
DEMO_USERS = {"o_demo_openid": "王小明", "o_demo_lunar": "李娜"}  # the demo CRM's WeChat members


class NotFollowing(Exception):
    """Only followers can message an Official Account."""


class Simulator:
    """The simulated server: state, clock, and the HTTP client that pushes to the bot."""

    def __init__(self, config: SimConfig, clock: SimClock | None = None) -> None:
        self.config = config
        self.clock = clock or SimClock()
        self.state = SimState(config, self.clock)
        self._msg_ids = itertools.count(24_000_000_000_000_000 + secrets.randbelow(10**12))
        self._session: aiohttp.ClientSession | None = None
        self._created: dict[str, int] = {}
        for openid, name in DEMO_USERS.items():
            self.state.add_user(openid, name, followed=True)
        for openid in config.followers:
            self.state.add_follower(openid)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    # --- user actions ---------------------------------------------------------------------

    async def send_text(self, openid: str, text: str) -> dict[str, Any]:
        self._require_follower(openid)
        self.state.user_said(openid)
        self.state.record(openid, "user", "text", text)
        return await self._push(openid, "text", {"Content": text, "MsgId": next(self._msg_ids)})

    async def send_image(self, openid: str) -> dict[str, Any]:
        self._require_follower(openid)
        self.state.user_said(openid)
        media_id = secrets.token_urlsafe(32)
        self.state.record(openid, "user", "image", detail={"media_id": media_id})
        fields: dict[str, str | int] = {
            "PicUrl": f"http://{self.config.host}:{self.config.port}/sim/media/{media_id}.jpg",
            "MediaId": media_id,
            "MsgId": next(self._msg_ids),
        }
        return await self._push(openid, "image", fields)

    async def send_event(self, openid: str, event: str, key: str = "") -> dict[str, Any]:
        if event not in EVENTS:
            raise ValueError(f"event must be one of {', '.join(EVENTS)}")
        if event != "subscribe":
            self._require_follower(openid)
        self.state.user_event(openid, event)
        self.state.record(openid, "user", "event", key, detail={"event": event})
        fields: dict[str, str | int] = {"Event": event}
        if event == "CLICK":
            fields["EventKey"] = key
        return await self._push(openid, "event", fields)

    def _require_follower(self, openid: str) -> None:
        if not self.state.user(openid).followed:
            raise NotFollowing(openid)

    async def verify_url(self) -> dict[str, Any]:
        """What the OA console does when the server URL is saved."""
        return await verify_url(self._client(), self.config, int(self.clock.wall()))

    # --- the push -------------------------------------------------------------------------

    async def _push(
        self, openid: str, msg_type: str, fields: dict[str, str | int]
    ) -> dict[str, Any]:
        created = self._create_time(openid)
        plain = message_xml(
            {
                "ToUserName": self.config.original_id,
                "FromUserName": openid,
                "CreateTime": created,
                "MsgType": msg_type,
                **fields,
            }
        )
        signed = sign(self.config, plain, int(self.clock.wall()), openid)
        attempts = await deliver(self._client(), self.config, signed)
        for attempt in attempts:
            self.state.record(openid, "wechat", "push", msg_type, detail=attempt_json(attempt))
        reply = read_reply(self.config, attempts[-1] if attempts else None, openid)
        self._log_reply(openid, reply)
        return {
            "passive": _reply_json(reply),
            "failed": reply.failed,
            "error": reply.error,
            "attempts": [attempt_json(attempt) for attempt in attempts],
        }

    def _create_time(self, openid: str) -> int:
        """Real seconds, strictly increasing per user.

        The bot tells a retried event from a new one by FromUserName + CreateTime, so two
        clicks in one second would look like one; a person cannot click that fast, a test can.
        """
        created = max(int(self.clock.wall()), self._created.get(openid, 0) + 1)
        self._created[openid] = created
        return created

    def _log_reply(self, openid: str, reply: PassiveReply) -> None:
        if reply.failed:
            self.state.record(openid, "wechat", "failed", reply.error)
        elif reply.msg_type is not None:
            detail = {"msg_type": reply.msg_type}
            self.state.record(openid, "bot", "passive", reply.content, detail=detail)


def _reply_json(reply: PassiveReply) -> dict[str, str] | None:
    if reply.msg_type is None:
        return None
    return {"msg_type": reply.msg_type, "content": reply.content}
