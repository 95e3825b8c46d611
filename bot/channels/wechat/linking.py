"""Link tokens: a signed, expiring customer id carried by a WeChat QR code's scene string.

A logged-in customer (on the web, in a shop) is shown a parametric QR code whose `scene_str` is
`link_token(customer_id, secret, now)`. Scanning it makes WeChat push `subscribe` with
`EventKey=qrscene_<token>` (a new follower) or `SCAN` with `EventKey=<token>` (a follower), and
the channel links the follower's OpenID to that customer. The token is
`<customer id>.<expiry, unix seconds>.<HMAC-SHA256, base64url, 22 chars>`: short enough for
WeChat's 64-character scene strings, and nobody can forge one for another customer or reuse an
old one after it expires. A token links once: the channel spends its MAC in the CRM
(`crm_store.spent_tokens`, scope "link") in the transaction that links the OpenID.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

LINK_TOKEN_TTL = timedelta(minutes=30)
MAC_CHARS = 22  # 132 bits of the HMAC
SCENE_PREFIX = "qrscene_"  # WeChat's prefix on a non-follower's scan


class InvalidLinkToken(ValueError):
    """Not a link token of ours, forged, or expired; the text says which."""


@dataclass(frozen=True)
class LinkToken:
    """A valid token's contents; `mac` identifies the token when it is spent."""

    customer_id: int
    expires_at: datetime
    mac: str


def _mac(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:MAC_CHARS]


def link_token(
    customer_id: int, secret: str, now: datetime, ttl: timedelta = LINK_TOKEN_TTL
) -> str:
    """The token to put in a QR code's scene string; it is valid until `now + ttl`."""
    if not secret:
        raise ValueError("a link token needs a secret")
    payload = f"{int(customer_id)}.{int((now + ttl).timestamp())}"
    return f"{payload}.{_mac(secret, payload)}"


def customer_of_token(token: str, secret: str, now: datetime) -> int:
    """The customer id a valid token carries; InvalidLinkToken otherwise."""
    return read_link_token(token, secret, now).customer_id


def read_link_token(token: str, secret: str, now: datetime) -> LinkToken:
    """A valid token's customer, expiry and MAC; InvalidLinkToken otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():  # compare_digest refuses non-ASCII text
        raise InvalidLinkToken("not a link token")
    customer, expires, mac = parts
    if not (customer.isdigit() and expires.isdigit()):
        raise InvalidLinkToken("not a link token")
    if not hmac.compare_digest(mac, _mac(secret, f"{customer}.{expires}")):
        raise InvalidLinkToken("forged link token")
    if int(expires) < now.timestamp():
        raise InvalidLinkToken("expired link token")
    return LinkToken(int(customer), datetime.fromtimestamp(int(expires), timezone.utc), mac)


def scene_of(event: str, event_key: str) -> str:
    """The scene string of a subscribe or SCAN event key (without WeChat's `qrscene_`)."""
    if event.lower() == "subscribe":
        return event_key.removeprefix(SCENE_PREFIX)
    return event_key
