"""Staff logins: how often anyone may try, and the password check outside any transaction.

An attempt reads the account in one short transaction, checks the password with none open
(argon2id: ~64 MiB and a good fraction of a second), then writes the outcome (the failure count,
a lock, the audit row) in another short one. Every refusal looks the same to the caller: an
unknown username is checked against a dummy hash of the same cost, and a locked or deactivated
account has its password checked too, then refused whatever it was.

Two limits (docs/security.md): per account, MAX_FAILED_LOGINS wrong passwords in a row lock it
(crm_store.staff.lockout: 1 minute, doubling, at most an hour; a correct login resets); per
client address, ADDRESS_ATTEMPTS failed or unfinished attempts within ADDRESS_WINDOW, after which
it gets 429 until the oldest leaves the window. Both the address window and the one-at-a-time
rule per username live in this process: the console runs as one (`carebot console`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sanic import Request

from bot.console.desk import Desk
from crm_store.staff import (
    LoginAccount,
    StaffMember,
    check_password,
    find_login_account,
    record_login,
    record_login_refused,
    upgraded_hash,
)

log = logging.getLogger(__name__)
ADDRESS_ATTEMPTS = 20
ADDRESS_WINDOW = timedelta(minutes=5)
PASSWORD_CHECKS_AT_ONCE = 2  # each argon2id check takes 64 MiB: a flood must not exhaust memory
SWEEP_ABOVE = 10_000  # addresses remembered before the idle ones are forgotten


class SlidingWindow:
    """At most `limit` marks per key within the last `window`, in this process."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self.limit = limit
        self.window = window
        self._marks: dict[str, deque[datetime]] = {}

    def take(self, key: str, now: datetime) -> bool:
        """Mark one attempt, unless the key already has `limit` marks in the window."""
        if len(self._marks) > SWEEP_ABOVE:
            self._sweep(now)
        marks = self._recent(key, now)
        if len(marks) >= self.limit:
            return False
        marks.append(now)
        return True

    def give_back(self, key: str, mark: datetime) -> None:
        """Forget a mark `take` made (an attempt that succeeded)."""
        marks = self._marks.get(key)
        if marks and mark in marks:
            marks.remove(mark)

    def retry_after(self, key: str, now: datetime) -> timedelta:
        """How long until the key may try again."""
        marks = self._recent(key, now)
        if len(marks) < self.limit:
            return timedelta(0)
        return marks[0] + self.window - now

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        marks = self._marks.setdefault(key, deque())
        while marks and marks[0] <= now - self.window:
            marks.popleft()
        return marks

    def _sweep(self, now: datetime) -> None:
        for key in list(self._marks):
            if not self._recent(key, now):
                del self._marks[key]


class KeyedLocks:
    """One asyncio lock per key, forgotten once nobody holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@dataclass(frozen=True)
class Outcome:
    """A login attempt's result: the member, or a refusal (throttled: when to try again)."""

    member: StaffMember | None = None
    retry_after: timedelta | None = None

    @property
    def throttled(self) -> bool:
        return self.retry_after is not None


def refusal_reason(account: LoginAccount | None, matches: bool, now: datetime) -> str | None:
    """Why a checked password does not log in (as the audit log says it), or None if it does."""
    if account is None:
        return "unknown"
    if not account.member.active:
        return "inactive"
    if account.locked(now):
        return "locked"
    return None if matches else "password"


def client_address(request: Request) -> str:
    """The caller's address: a proxy's forwarded address only where Sanic is told to trust one
    (SANIC_PROXIES_COUNT, SANIC_REAL_IP_HEADER or SANIC_FORWARDED_SECRET), else the peer's."""
    return request.remote_addr or request.ip or "-"


@dataclass
class Logins:
    """The console's login desk: the address window, one attempt per username at a time (so
    concurrent guesses cannot all be checked before the first failure is counted), and a cap
    on password checks running at once."""

    addresses: SlidingWindow = field(
        default_factory=lambda: SlidingWindow(ADDRESS_ATTEMPTS, ADDRESS_WINDOW)
    )
    accounts: KeyedLocks = field(default_factory=KeyedLocks)
    checks: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(PASSWORD_CHECKS_AT_ONCE)
    )

    async def attempt(self, desk: Desk, address: str, username: str, password: str) -> Outcome:
        """Counted against the address until it succeeds; refused at once past the limit."""
        now = desk.clock()
        if not self.addresses.take(address, now):
            log.warning("console login: %s is throttled", address)
            return Outcome(retry_after=self.addresses.retry_after(address, now))
        async with self.accounts.hold(username.lower()):
            member = await self.check(desk, address, username, password)
        if member is not None:
            self.addresses.give_back(address, now)
        return Outcome(member)

    async def check(
        self, desk: Desk, address: str, username: str, password: str
    ) -> StaffMember | None:
        account = await desk.db(lambda s: find_login_account(s, username=username))
        stored = account.password_hash if account else None
        async with self.checks:
            matches = await asyncio.to_thread(check_password, password, stored)
        reason = refusal_reason(account, matches, desk.clock())
        if reason is not None or account is None:
            await desk.db(
                lambda s: record_login_refused(
                    s,
                    username=username,
                    account=account,
                    reason=reason or "unknown",
                    address=address,
                    clock=desk.clock,
                )
            )
            return None
        async with self.checks:
            new_hash = await asyncio.to_thread(upgraded_hash, password, stored)
        return await desk.db(
            lambda s: record_login(
                s, account=account, new_hash=new_hash, address=address, clock=desk.clock
            )
        )
