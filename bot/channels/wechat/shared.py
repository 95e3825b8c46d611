"""Redis state for several Rasa processes behind one webhook URL: retry claims and the token.

With one process the retry map (turns.py) and the token cache (api.py) live in memory. Behind a
load balancer a WeChat retry can reach another process, and every process would fetch its own
access token, each fetch invalidating the others'. So, with `redis_url` set, under the prefix
`<redis_prefix>:<app id>:`:

    turn:<dedupe key>  SET NX EX 120 by the process that runs the bot; then the HTTP body it
                       answered. A retry reaching another process waits for that body (up to its
                       own deadline, then answers "success") and never runs the bot again.
    nonce:<hash>       a push's (timestamp, nonce, signature), spent: the push it was spent on,
                       until the timestamp leaves the replay window (nonces.py).
    token              the access token, expiring REFRESH_MARGIN before WeChat expires it.
    token-lock         SET NX EX 10 by the one process fetching a new token; the others wait
                       for the token to appear.
"""

from __future__ import annotations

import asyncio
import secrets
import time

from redis.asyncio import Redis

CLAIM_TTL_SECONDS = 120  # WeChat's retries end about 15 s after the first request
LOCK_TTL_SECONDS = 10  # longer than a token fetch may take (the HTTP timeout)
POLL_SECONDS = 0.05
PENDING = "\x00pending"  # never an HTTP body: bodies are "success" or XML
DEFAULT_PREFIX = "carebot:wechat"
# The value already stored under the key, or (nil) after storing ours: one atomic step.
_GET_OR_SET = """
local seen = redis.call('get', KEYS[1])
if seen then return seen end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
# Delete a key only while it still holds our value: another process may have replaced it.
_DELETE_IF_EQUAL = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class SharedState:
    """The channel's Redis keys; the client connects on first use, inside the event loop."""

    def __init__(self, url: str, app_id: str, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = url
        self.prefix = f"{prefix}:{app_id}"
        self._redis: Redis | None = None

    def _client(self) -> Redis:
        if self._redis is None:
            self._redis = Redis.from_url(
                self.url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2
            )
        return self._redis

    async def close(self) -> None:
        """Close the connection pool."""
        if self._redis is not None:
            await self._redis.close()
            self._redis = None

    # --- retries --------------------------------------------------------------------------

    async def claim(self, dedupe_key: str) -> bool:
        """True for the one process that is to run the bot for this push."""
        key = f"{self.prefix}:turn:{dedupe_key}"
        return bool(await self._client().set(key, PENDING, nx=True, ex=CLAIM_TTL_SECONDS))

    async def answered(self, dedupe_key: str, body: str) -> None:
        """Store the HTTP body decided for a claimed push, for retries in other processes."""
        key = f"{self.prefix}:turn:{dedupe_key}"
        await self._client().set(key, body, xx=True, ex=CLAIM_TTL_SECONDS)

    async def wait_for_answer(self, dedupe_key: str, timeout: float) -> str | None:
        """The body another process answered, or None if it has none within `timeout` (at
        once when no process has claimed the push)."""
        key, deadline = f"{self.prefix}:turn:{dedupe_key}", time.monotonic() + timeout
        while True:
            body = await self._client().get(key)
            if body is None:
                return None
            if body != PENDING:
                return str(body)
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(POLL_SECONDS)

    # --- spent push nonces ----------------------------------------------------------------

    async def spend_nonce(self, nonce_key: str, push_key: str, ttl: float) -> str | None:
        """None the first time the nonce is seen (it is then kept for `ttl` seconds with the
        push); afterwards the push it was first seen with."""
        key = f"{self.prefix}:nonce:{nonce_key}"
        ttl_ms = str(max(int(ttl * 1000), 1))
        seen = await self._client().eval(_GET_OR_SET, 1, key, push_key, ttl_ms)
        return None if seen is None else str(seen)

    # --- the access token -----------------------------------------------------------------

    async def token(self) -> tuple[str, float] | None:
        """The stored token and the seconds it has left, or None."""
        key = f"{self.prefix}:token"
        value, ttl_ms = await self._client().pipeline().get(key).pttl(key).execute()
        if value is None or ttl_ms <= 0:
            return None
        return str(value), ttl_ms / 1000

    async def put_token(self, value: str, ttl: float) -> None:
        """Store a freshly fetched token for `ttl` seconds."""
        await self._client().set(f"{self.prefix}:token", value, px=max(int(ttl * 1000), 1))

    async def drop_token(self, stale: str) -> None:
        """Forget the token WeChat called stale, unless another process already replaced it."""
        await self._client().eval(_DELETE_IF_EQUAL, 1, f"{self.prefix}:token", stale)

    async def lock_token(self) -> str | None:
        """Take the token-fetch lock; its owner id, or None when another process holds it."""
        owner = secrets.token_hex(8)
        key = f"{self.prefix}:token-lock"
        taken = await self._client().set(key, owner, nx=True, ex=LOCK_TTL_SECONDS)
        return owner if taken else None

    async def unlock_token(self, owner: str) -> None:
        """Release the token-fetch lock if it is still ours."""
        await self._client().eval(_DELETE_IF_EQUAL, 1, f"{self.prefix}:token-lock", owner)
