"""A signed push's (timestamp, nonce, signature) is spent once (docs/wechat.md, "Replay
protection").

The timestamp window refuses old pushes, but inside it a captured push could be sent again, and
in plain mode, where the signature covers only token, timestamp and nonce, with any body at all.
So the first push to carry a signature spends it, together with the push it carried (its retry
dedupe key). Seen again, the signature comes:

- with the same push (`SAME_PUSH`): WeChat re-sending the very request it got no answer to, or
  someone replaying it. Either way the channel answers from that push's turn and never runs the
  bot a second time;
- with another push (`OTHER_PUSH`): a body forged under a captured signature. Refused.

A spent signature is kept until its timestamp leaves the replay window (from then on the window
refuses it). The first store that answers keeps it: Redis when the channel has one (every
process shares it), then the CRM database's `spent_tokens` (every process on that database
shares it), then this process's memory. A failing store is logged and skipped, so a push never
gets a 5xx because of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Protocol

from redis.exceptions import RedisError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.channels.wechat.shared import SharedState
from crm_store.clock import Clock
from crm_store.db import session_scope
from crm_store.errors import CrmError
from crm_store.spent_tokens import purge_spent_tokens, spend_token, token_is_spent

logger = logging.getLogger(__name__)

NONCE_SCOPE = "wechat-nonce"  # a spent signature
PUSH_SCOPE = "wechat-push"  # a spent signature together with the push it carried
DATABASE_TIMEOUT_SECONDS = 1.0  # then memory answers: the push has a 5-second budget
PURGE_INTERVAL = timedelta(minutes=10)
MAX_MEMORY_NONCES = 50_000


class Sighting(Enum):
    """What spending a push's signature found: never seen, seen with this push, or another."""

    FIRST = "first"
    SAME_PUSH = "same push"
    OTHER_PUSH = "other push"


class StoreUnavailable(Exception):
    """The store could not answer; the next one is asked."""


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class PushNonce:
    """A push's signature and the push it carries, as digests, and when the window ends."""

    key: str
    push: str
    expires_at: datetime

    @classmethod
    def of(
        cls,
        app_id: str,
        query: tuple[str, str, str],
        *,
        dedupe_key: str,
        sent_at: int,
        window: float,
    ) -> PushNonce:
        """`query`: the timestamp and nonce as sent, and the verified signature; `sent_at`: the
        timestamp as a number (inside the window); `window`: the replay window in seconds."""
        timestamp, nonce, signature = query
        ends = datetime.fromtimestamp(sent_at, timezone.utc) + timedelta(seconds=window)
        key = _digest(app_id, timestamp, nonce, signature.strip().lower())
        return cls(key=key, push=_digest(dedupe_key), expires_at=ends)

    @property
    def pair(self) -> str:
        """The signature and the push together."""
        return _digest(self.key, self.push)


class NonceStore(Protocol):
    """Keeps spent signatures; raises StoreUnavailable when it cannot answer."""

    name: str

    async def spend(self, nonce: PushNonce) -> Sighting: ...


class MemoryNonces:
    """This process only; the oldest entries go first when it is full."""

    name = "memory"

    def __init__(self, clock: Clock, max_entries: int = MAX_MEMORY_NONCES) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self._seen: OrderedDict[str, tuple[datetime, str]] = OrderedDict()

    async def spend(self, nonce: PushNonce) -> Sighting:
        now = self.clock()
        seen = self._seen.get(nonce.key)
        if seen is not None and seen[0] >= now:
            return Sighting.SAME_PUSH if seen[1] == nonce.push else Sighting.OTHER_PUSH
        self._make_room(now)
        self._seen[nonce.key] = (nonce.expires_at, nonce.push)
        return Sighting.FIRST

    def _make_room(self, now: datetime) -> None:
        if len(self._seen) < self.max_entries:
            return
        for key in [key for key, (expires_at, _) in self._seen.items() if expires_at < now]:
            del self._seen[key]
        while len(self._seen) >= self.max_entries:
            self._seen.popitem(last=False)


class RedisNonces:
    """Every process with the same Redis and app id."""

    name = "redis"

    def __init__(self, shared: SharedState, clock: Clock) -> None:
        self.shared = shared
        self.clock = clock

    async def spend(self, nonce: PushNonce) -> Sighting:
        ttl = (nonce.expires_at - self.clock()).total_seconds()
        try:
            seen = await self.shared.spend_nonce(nonce.key, nonce.push, ttl)
        except (RedisError, OSError) as error:
            raise StoreUnavailable(str(error)) from error
        if seen is None:
            return Sighting.FIRST
        return Sighting.SAME_PUSH if seen == nonce.push else Sighting.OTHER_PUSH


def spend_push_nonce(session: Session, nonce: PushNonce, clock: Clock) -> Sighting:
    """Spend the signature, and the signature with its push, in the caller's transaction."""
    expires_at = nonce.expires_at
    if spend_token(session, scope=NONCE_SCOPE, key=nonce.key, expires_at=expires_at, clock=clock):
        spend_token(session, scope=PUSH_SCOPE, key=nonce.pair, expires_at=expires_at, clock=clock)
        return Sighting.FIRST
    if token_is_spent(session, scope=PUSH_SCOPE, key=nonce.pair, clock=clock):
        return Sighting.SAME_PUSH
    return Sighting.OTHER_PUSH


class DatabaseNonces:
    """Every process on the same CRM database; expired rows are purged now and then."""

    name = "database"

    def __init__(
        self,
        engine: Callable[[], Engine | None],
        clock: Clock,
        timeout: float = DATABASE_TIMEOUT_SECONDS,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.timeout = timeout
        self._purged_at: datetime | None = None

    async def spend(self, nonce: PushNonce) -> Sighting:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._spend, nonce), self.timeout)
        except (SQLAlchemyError, CrmError, OSError, asyncio.TimeoutError) as error:
            raise StoreUnavailable(repr(error)) from error

    def _spend(self, nonce: PushNonce) -> Sighting:
        engine = self.engine()
        if engine is None:
            raise StoreUnavailable("no database_url")
        with session_scope(engine) as session:
            sighting = spend_push_nonce(session, nonce, self.clock)
            self._purge_now_and_then(session)
        return sighting

    def _purge_now_and_then(self, session: Session) -> None:
        now = self.clock()
        if self._purged_at is None or now - self._purged_at >= PURGE_INTERVAL:
            self._purged_at = now
            purge_spent_tokens(session, clock=self.clock)


class PushNonces:
    """The stores in order; the last, memory, always answers."""

    def __init__(self, stores: Sequence[NonceStore], clock: Clock) -> None:
        self.stores = [*stores, MemoryNonces(clock)]

    async def spend(self, nonce: PushNonce) -> Sighting:
        for store in self.stores[:-1]:
            try:
                return await store.spend(nonce)
            except StoreUnavailable as error:
                logger.warning("wechat nonce store %s unavailable (%s)", store.name, error)
        return await self.stores[-1].spend(nonce)
