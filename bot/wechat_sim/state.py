"""The simulated WeChat server's rules, as plain objects over an injectable clock.

Access tokens, followers, the customer-service window and quota, the daily API limit and the
log of everything exchanged. Each API answer is the JSON WeChat returns (HTTP 200 with an
errcode), so the HTTP layer in app.py only parses and serialises.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from bot.wechat_sim.config import SimConfig

DAY_S = 86_400
# WeChat's daily quotas reset at midnight Beijing time: WeChat's own day, whatever the brand's
# business zone (crm_store.clock.BUSINESS_TZ) is, so the simulator keeps WeChat's offset.
CHINA_OFFSET_S = 8 * 3600
MAX_TEXT_BYTES = 2048
MAX_RECORDS = 20_000  # the oldest records go first; a demo runs for days

Answer = dict[str, Any]

ERRMSG = {
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44004: "empty content",
    45002: "content size out of limit",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    45047: "out of response count limit",
    47001: "data format error",
}


def error(errcode: int) -> Answer:
    """WeChat's answer for an errcode."""
    return {"errcode": errcode, "errmsg": ERRMSG[errcode]}


class Clock(Protocol):
    def now(self) -> float: ...


@dataclass
class SimClock:
    """Wall time plus an offset that tests and the page move forward (never back)."""

    source: Callable[[], float] = time.time
    offset_s: float = 0.0

    def now(self) -> float:
        return self.source() + self.offset_s

    def wall(self) -> float:
        """The real time, which the bot's own clock also reads (push timestamps)."""
        return self.source()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset_s += seconds


@dataclass
class IssuedToken:
    value: str
    expires_at: float
    replaced_at: float | None = None  # a newer fetch made it stale, after an overlap


@dataclass
class Window:
    """Customer-service messages the account may still send after a user action."""

    expires_at: float
    quota: int
    used: int = 0

    def is_open(self, now: float) -> bool:
        return now < self.expires_at

    @property
    def left(self) -> int:
        return self.quota - self.used


@dataclass
class SimUser:
    openid: str
    name: str = ""
    followed: bool = True
    windows: dict[str, Window] = field(default_factory=dict)  # "message" and "event"
    # On the page and in GET /sim/api/users; a follower from the followers file is listed from
    # the first record that concerns them (a message the bot sends them, say).
    listed: bool = True

    def as_json(self, now: float) -> dict[str, Any]:
        open_windows = {
            kind: {"expires_in": round(w.expires_at - now), "left": w.left}
            for kind, w in self.windows.items()
            if w.is_open(now)
        }
        return {
            "openid": self.openid,
            "name": self.name,
            "followed": self.followed,
            "windows": open_windows,
        }


@dataclass(frozen=True)
class Record:
    """One line of the log: a user action, a push attempt, or something the bot sent."""

    id: int
    time: float
    openid: str
    sender: str  # "user", "bot" or "wechat" (the simulator itself)
    kind: str  # user: text, image, event; bot: passive, cs, template; wechat: push, failed
    content: str = ""
    errcode: int = 0
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class TokenBook:
    """Access tokens: a new fetch replaces the previous one, which lives on for the overlap."""

    def __init__(self, clock: Clock, lifetime_s: int, overlap_s: float) -> None:
        self.clock, self.lifetime_s, self.overlap_s = clock, lifetime_s, overlap_s
        self._tokens: dict[str, IssuedToken] = {}
        self._latest: dict[str, str] = {}  # per endpoint: cgi-bin/token and stable_token
        self.issued = 0

    def issue(self, endpoint: str) -> IssuedToken:
        now = self.clock.now()
        previous = self._tokens.get(self._latest.get(endpoint, ""))
        if previous is not None and previous.replaced_at is None:
            previous.replaced_at = now
        token = IssuedToken(secrets.token_urlsafe(96), now + self.lifetime_s)
        self.issued += 1
        self._tokens[token.value] = token
        self._latest[endpoint] = token.value
        return token

    def latest(self, endpoint: str) -> IssuedToken | None:
        """The endpoint's newest token while it is still valid."""
        token = self._tokens.get(self._latest.get(endpoint, ""))
        return token if token is not None and self.check(token.value) == 0 else None

    def check(self, value: str) -> int:
        """0 for a usable token, else WeChat's errcode."""
        if not value:
            return 41001
        token = self._tokens.get(value)
        now = self.clock.now()
        if token is None:
            return 40001
        if token.replaced_at is not None and now >= token.replaced_at + self.overlap_s:
            return 40001  # "not latest"
        return 42001 if now >= token.expires_at else 0

    def expires_in(self, token: IssuedToken) -> int:
        return max(int(token.expires_at - self.clock.now()), 0)


class SimState:
    """Everything the simulated server knows; every method is one protocol rule."""

    def __init__(self, config: SimConfig, clock: Clock) -> None:
        self.config, self.clock = config, clock
        self.tokens = TokenBook(clock, config.token_lifetime_s, config.token_overlap_s)
        self.users: dict[str, SimUser] = {}
        self.records: list[Record] = []
        self._ids = itertools.count(1)
        self._calls: dict[tuple[str, int], int] = {}
        self._template_msgids = itertools.count(2_000_000_000 + secrets.randbelow(10**6))

    # --- tokens ---------------------------------------------------------------------------

    def fetch_token(self, appid: str, secret: str, grant_type: str) -> Answer:
        """GET /cgi-bin/token."""
        refused = self._credentials_error(appid, secret, grant_type)
        if refused:
            return error(refused)
        if not self._count_call("token", self.config.token_daily_limit):
            return error(45009)
        token = self.tokens.issue("token")
        return {"access_token": token.value, "expires_in": self.tokens.expires_in(token)}

    def stable_token(self, body: dict[str, Any]) -> Answer:
        """POST /cgi-bin/stable_token: the same token to every caller unless forced."""
        appid, secret = str(body.get("appid", "")), str(body.get("secret", ""))
        refused = self._credentials_error(appid, secret, str(body.get("grant_type", "")))
        if refused:
            return error(refused)
        token = None if body.get("force_refresh") else self.tokens.latest("stable")
        token = token or self.tokens.issue("stable")
        return {"access_token": token.value, "expires_in": self.tokens.expires_in(token)}

    def _credentials_error(self, appid: str, secret: str, grant_type: str) -> int:
        if grant_type != "client_credential":
            return 40002  # invalid grant_type
        if appid != self.config.app_id:
            return 40013
        return 40125 if secret != self.config.app_secret else 0

    def _count_call(self, api: str, limit: int) -> bool:
        """Counts one call of an API today; False once today's limit is used up."""
        key = (api, int(self.clock.now() + CHINA_OFFSET_S) // DAY_S)
        self._calls[key] = self._calls.get(key, 0) + 1
        return self._calls[key] <= limit

    # --- users ----------------------------------------------------------------------------

    def user(self, openid: str) -> SimUser:
        """A known user; an unknown one is a follower from before the simulator started."""
        return self.users.setdefault(openid, SimUser(openid))

    def add_user(self, openid: str, name: str = "", followed: bool = False) -> SimUser:
        user = self.user(openid) if openid in self.users else SimUser(openid, followed=followed)
        user.name = name or user.name
        user.listed = True
        self.users[openid] = user
        return user

    def add_follower(self, openid: str) -> SimUser:
        """A follower from before the simulator started, not listed until something happens."""
        return self.users.setdefault(openid, SimUser(openid, listed=False))

    def listed_users(self) -> list[SimUser]:
        return [user for user in self.users.values() if user.listed]

    def user_said(self, openid: str) -> None:
        """A user message opens (or renews) the 48-hour window with a fresh quota."""
        user = self.user(openid)
        now = self.clock.now()
        user.windows["message"] = Window(now + self.config.window_s, self.config.quota)

    def user_event(self, openid: str, event: str) -> None:
        """Follow and menu clicks open a short window; unfollowing closes every window."""
        user, now = self.user(openid), self.clock.now()
        if event == "unsubscribe":
            user.followed = False
            user.windows.clear()
            return
        if event == "subscribe":
            user.followed = True
        if event in ("subscribe", "CLICK", "SCAN"):
            window = Window(now + self.config.event_window_s, self.config.event_quota)
            user.windows["event"] = window

    # --- the send APIs --------------------------------------------------------------------

    def custom_send(self, access_token: str, body: Any) -> Answer:
        """POST /cgi-bin/message/custom/send (text only), inside the window and its quota."""
        refused = self._api_error(access_token, "custom_send")
        if refused:
            return error(refused)
        openid, content, invalid = _text_message(body)
        if invalid:
            return self._sent(openid, "cs", content, invalid)
        return self._sent(openid, "cs", content, self._use_window(openid))

    def template_send(self, access_token: str, body: Any) -> Answer:
        """POST /cgi-bin/message/template/send: any time, to a follower, a known template."""
        refused = self._api_error(access_token, "template_send")
        if refused:
            return error(refused)
        if not isinstance(body, dict) or not isinstance(body.get("data", {}), dict):
            return error(47001)
        openid, template_id = str(body.get("touser", "")), str(body.get("template_id", ""))
        user = self.users.get(openid)
        errcode = 40003 if user is None else 0 if user.followed else 43004
        if not errcode and template_id not in self.config.templates:
            errcode = 40037
        detail = {"template_id": template_id, "url": body.get("url"), "data": body.get("data")}
        answer = self._sent(openid, "template", _template_text(body), errcode, detail)
        if not errcode:
            answer["msgid"] = next(self._template_msgids)
        return answer

    def _api_error(self, access_token: str, api: str) -> int:
        errcode = self.tokens.check(access_token)
        if errcode:
            return errcode
        return 0 if self._count_call(api, self.config.daily_limit) else 45009

    def _use_window(self, openid: str) -> int:
        user = self.users.get(openid)
        if user is None or not user.followed:
            return 45015
        now = self.clock.now()
        windows = sorted(
            (w for w in user.windows.values() if w.is_open(now)), key=lambda w: w.expires_at
        )
        if not windows:
            return 45015
        usable = [w for w in windows if w.left > 0]
        if not usable:
            return 45047
        usable[0].used += 1
        return 0

    def _sent(
        self,
        openid: str,
        kind: str,
        content: str,
        errcode: int,
        detail: dict[str, Any] | None = None,
    ) -> Answer:
        self.record(openid, "bot", kind, content, errcode=errcode, detail=detail)
        return error(errcode)

    # --- the log --------------------------------------------------------------------------

    def record(
        self,
        openid: str,
        sender: str,
        kind: str,
        content: str = "",
        *,
        errcode: int = 0,
        detail: dict[str, Any] | None = None,
    ) -> Record:
        entry = Record(
            next(self._ids), self.clock.now(), openid, sender, kind, content, errcode, detail or {}
        )
        self.records.append(entry)
        del self.records[:-MAX_RECORDS]
        if openid in self.users:
            self.users[openid].listed = True
        return entry

    def forget(self, openid: str) -> int:
        """Erase a user and every record of theirs (`carebot forget`, docs/personal-data.md);
        how many records went."""
        self.users.pop(openid, None)
        kept = [r for r in self.records if r.openid != openid]
        erased = len(self.records) - len(kept)
        self.records = kept
        return erased

    def log(self, openid: str | None = None, since: int = 0) -> list[Record]:
        """Records after `since`, of one user or all."""
        return [r for r in self.records if r.id > since and (openid is None or r.openid == openid)]


def _text_message(body: Any) -> tuple[str, str, int]:
    """(openid, content, errcode) of a CS message body; only lowercase "text" is supported."""
    if not isinstance(body, dict):
        return "", "", 47001
    openid = str(body.get("touser") or "")
    text = body.get("text")
    content = str(text.get("content") or "") if isinstance(text, dict) else ""
    if not openid:
        return openid, content, 40003
    if body.get("msgtype") != "text":
        return openid, content, 40008
    if not content:
        return openid, content, 44004
    return openid, content, 45002 if len(content.encode()) > MAX_TEXT_BYTES else 0


def _template_text(body: dict[str, Any]) -> str:
    """The template's fields as the lines a user sees ("value" of each key, in order)."""
    data = body.get("data") or {}
    values = [str(item.get("value", "")) for item in data.values() if isinstance(item, dict)]
    return "\n".join(value for value in values if value)
