"""Who is on the other end of a web chat socket.

A logged-in customer brings a token (an HS256 JWT whose `sub` is their website user id, the
`web_user` identity in the CRM) signed with the secret the website shares with the channel; the
demo login issues the same tokens. Their conversation id is that user id, so every device and
every reload continues one conversation. Everyone else is anonymous and gets a random session id
that only they know; an anonymous visitor can never choose a logged-in user's conversation.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

import jwt

ALGORITHM = "HS256"
TOKEN_LIFETIME = timedelta(days=30)
ANONYMOUS_PREFIX = "web-"
# Conversation ids of other namespaces: a signed-in user id never takes one of them.
RESERVED_PREFIXES = (ANONYMOUS_PREFIX, "rest:")
_ANONYMOUS = re.compile(r"web-[0-9a-f]{32}")
MAX_USER_ID = 64


class InvalidToken(Exception):
    """The token is not ours, is malformed or has expired."""


def issue_token(user_id: str, secret: str, now: datetime) -> str:
    """A token that logs `user_id` in until TOKEN_LIFETIME from `now`."""
    claims = {"sub": user_id, "iat": int(now.timestamp())}
    claims["exp"] = int((now + TOKEN_LIFETIME).timestamp())
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def user_of(token: str, secret: str, now: datetime) -> str:
    """The user id a token vouches for at `now`; raises InvalidToken otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "require": ["sub", "exp"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from error
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_USER_ID:
        raise InvalidToken("the token names no usable user")
    if subject.startswith(RESERVED_PREFIXES):
        raise InvalidToken("a user id may not look like an anonymous session or a REST sender")
    if not isinstance(claims["exp"], int) or claims["exp"] <= now.timestamp():
        raise InvalidToken("the token has expired")
    return subject


def new_anonymous_session() -> str:
    return ANONYMOUS_PREFIX + secrets.token_hex(16)


def session_for(user_id: str | None, requested: object) -> str:
    """The conversation a socket joins: the user's own, the anonymous one it kept, or a new one."""
    if user_id is not None:
        return user_id
    if isinstance(requested, str) and _ANONYMOUS.fullmatch(requested):
        return requested
    return new_anonymous_session()
