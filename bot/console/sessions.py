"""Signed-cookie sessions and CSRF tokens (HMAC-SHA256; nothing is stored server-side).

A cookie is `base64url(json payload).base64url(hmac)`. The payload carries the staff id, role,
expiry, the account's session version and the session's CSRF token; every POST must echo that
token in a form field `csrf` or an `X-CSRF-Token` header. Before login the cookie carries only a
CSRF token for the login form. The guard compares the version with the account's on every
request (bot/console/auth.py): logging out bumps it, so a copy of the cookie is void from then on,
though nothing is stored per session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

COOKIE = "carebot_console"


@dataclass(frozen=True)
class ConsoleSession:
    csrf: str
    expires: float
    staff_id: int | None = None
    role: str | None = None
    name: str | None = None
    version: int = 0  # the account's session version at login (staff_users.session_version)

    @property
    def logged_in(self) -> bool:
        return self.staff_id is not None


def new_session(
    now: datetime,
    lifetime: timedelta,
    staff_id: int | None = None,
    role: str | None = None,
    name: str | None = None,
    version: int = 0,
) -> ConsoleSession:
    """A fresh session with a fresh CSRF token (also on login: no session fixation)."""
    expires = (now + lifetime).timestamp()
    return ConsoleSession(secrets.token_urlsafe(24), expires, staff_id, role, name, version)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def sign(session: ConsoleSession, secret: str) -> str:
    body = _b64(json.dumps(asdict(session), separators=(",", ":")).encode())
    return f"{body}.{_mac(secret, body)}"


def verify(cookie: str | None, secret: str, now: datetime) -> ConsoleSession | None:
    """The session in a cookie, or None if it is missing, forged, malformed or expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    body, mac = cookie.split(".")
    if not hmac.compare_digest(mac, _mac(secret, body)):
        return None
    try:
        fields: dict[str, Any] = json.loads(_unb64(body))
        session = ConsoleSession(**fields)
    except (ValueError, TypeError):
        return None
    return session if session.expires > now.timestamp() else None


def csrf_matches(session: ConsoleSession | None, token: str | None) -> bool:
    return bool(session and token and hmac.compare_digest(session.csrf, token))
