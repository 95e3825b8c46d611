"""One-time login codes sent to a phone (docs/security.md): issued, counted for the rate
limits, checked, purged.

What is stored, and what never is:
- never the code: `digest` is sha256 of `salt:code`, with a random salt per row;
- never the phone: `phone_key` is HMAC-SHA256 of the normalized 11-digit number, keyed with
  `CAREBOT_PHONE_KEY_SECRET`. Without that variable the key is derived from the database URL
  (password included): stable for the installation, since every action server of one
  installation uses the same URL, and never written anywhere, but no stronger a secret than the
  URL itself; for SQLite the URL is only a path. Set the variable in production, to the same
  long random value on every action server. Changing it (or the URL, without it) forgets the
  history of every phone, so rate limits and lockouts start afresh.
- `customer_id` is the customer the code would identify or authorise; NULL when the number
  belongs to nobody. Such a row is stored like any other (the limits count it) and no answer
  ever matches it.

A row's life: live (`used_at` NULL, attempts left, before `expires_at`) until it is either
verified (`used_at` set, `attempts_left` > 0: a right answer is not counted as an attempt) or
exhausted (`used_at` set, `attempts_left` = 0: the last attempt was wrong), or it expires.

`check_login_code` first claims an attempt with one conditional UPDATE and compares only after
the claim succeeded, so however many answers arrive at once (several action servers, a
flood), a code is compared at most as many times as it had attempts: PostgreSQL serializes the
UPDATEs on the row, SQLite has one writer at a time.

`hold_phone` serializes everything done for one phone in the caller's transaction (a
transaction-level advisory lock on PostgreSQL; SQLite has one writer anyway), so "count, then
issue" keeps the per-phone limits exact. The per-client and overall counts are not locked and
may overshoot by the number of requests racing at that moment.

The caller owns the transaction; every function takes the clock's `now` as `clock`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from crm_store.clock import Clock, utcnow
from crm_store.errors import InvalidInput
from crm_store.models import LoginCode
from crm_store.validation import check_positive, check_text, normalize_phone

SECRET_VARIABLE = "CAREBOT_PHONE_KEY_SECRET"
MAX_CLIENT_CHARS = 128
_FALLBACK_CONTEXT = b"carebot phone key, derived from the database URL:"

CheckVerdict = Literal["ok", "wrong", "locked", "expired", "used", "missing"]


@dataclass(frozen=True)
class IssuedCode:
    id: int
    created_at: datetime
    expires_at: datetime
    attempts_left: int


@dataclass(frozen=True)
class CodeCheck:
    """The verdict on one answer:

    | verdict   | when                                                                   |
    | --------- | ---------------------------------------------------------------------- |
    | "missing" | no such code for this client                                           |
    | "used"    | the code was verified before                                           |
    | "locked"  | no attempts left, or this wrong answer was the last attempt            |
    | "expired" | at or past `expires_at` (the attempt is not counted)                   |
    | "ok"      | the right code, for a row that identifies somebody (`customer_id`)     |
    | "wrong"   | any other answer, attempts left                                        |
    """

    verdict: CheckVerdict
    attempts_left: int = 0
    customer_id: int | None = None  # set for "ok" only


@dataclass(frozen=True)
class SpentCode:
    """A code that can no longer be answered: verified, or exhausted by wrong answers."""

    at: datetime
    verified: bool


def phone_key(phone: str, secret: bytes) -> str:
    """HMAC-SHA256 of the normalized number, 64 hex digits."""
    return hmac.new(secret, normalize_phone(phone).encode(), hashlib.sha256).hexdigest()


def phone_key_secret(session: Session) -> bytes:
    """`CAREBOT_PHONE_KEY_SECRET`, else a key derived from this database's URL (module doc)."""
    configured = os.environ.get(SECRET_VARIABLE, "")
    if configured:
        return configured.encode()
    url = session.get_bind().engine.url.render_as_string(hide_password=False)
    return hashlib.sha256(_FALLBACK_CONTEXT + url.encode()).digest()


def code_digest(code: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def _key(session: Session, phone: str) -> str:
    return phone_key(phone, phone_key_secret(session))


def _client(client: str) -> str:
    return check_text(client, "login code client", MAX_CLIENT_CHARS)


def hold_phone(session: Session, *, phone: str) -> None:
    """Until the transaction ends, other transactions holding the same phone wait here."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite: transactions begin IMMEDIATE, one writer at a time
    lock_id = int.from_bytes(bytes.fromhex(_key(session, phone)[:16]), "big", signed=True)
    session.execute(select(func.pg_advisory_xact_lock(lock_id)))


def issue_login_code(
    session: Session,
    *,
    phone: str,
    client: str,
    customer_id: int | None,
    code: str,
    valid_for: timedelta,
    attempts: int,
    clock: Clock = utcnow,
) -> IssuedCode:
    """Store a new code for `phone`, asked by `client` (the conversation); only its digest."""
    if not (code.isdigit() and code.isascii()):
        raise InvalidInput("a login code is digits")
    check_positive(attempts, "attempts")
    if valid_for <= timedelta(0):
        raise InvalidInput("a login code must be valid for some time")
    now, salt = clock(), secrets.token_hex(16)
    row = LoginCode(
        phone_key=_key(session, phone),
        client=_client(client),
        customer_id=customer_id,
        digest=code_digest(code, salt),
        salt=salt,
        created_at=now,
        expires_at=now + valid_for,
        attempts_left=attempts,
    )
    session.add(row)
    session.flush()
    return IssuedCode(row.id, row.created_at, row.expires_at, row.attempts_left)


def count_login_codes(
    session: Session,
    *,
    since: datetime,
    phone: str | None = None,
    client: str | None = None,
) -> int:
    """Codes issued at or after `since`: for one phone, one client, both, or overall."""
    query = select(func.count()).select_from(LoginCode).where(LoginCode.created_at >= since)
    if phone is not None:
        query = query.where(LoginCode.phone_key == _key(session, phone))
    if client is not None:
        query = query.where(LoginCode.client == _client(client))
    return int(session.scalar(query) or 0)


def spent_login_codes(session: Session, *, phone: str, since: datetime) -> list[SpentCode]:
    """The phone's codes verified or exhausted at or after `since`, oldest first."""
    query = (
        select(LoginCode.used_at, LoginCode.attempts_left)
        .where(
            LoginCode.phone_key == _key(session, phone),
            LoginCode.used_at.is_not(None),
            LoginCode.used_at >= since,
        )
        .order_by(LoginCode.used_at, LoginCode.id)
    )
    return [SpentCode(at, attempts_left > 0) for at, attempts_left in session.execute(query)]


def check_login_code(
    session: Session, *, code_id: int, client: str, code: str | None, clock: Clock = utcnow
) -> CodeCheck:
    """The verdict on `code` (None: the answer held no code, a wrong answer) for the code
    `code_id` that `client` asked for; see `CodeCheck`. Counts the attempt first."""
    now = clock()
    if not _claim_attempt(session, code_id, _client(client), now):
        return _unclaimed(session, code_id, client, now)
    row = session.execute(
        select(LoginCode).where(LoginCode.id == code_id).execution_options(populate_existing=True)
    ).scalar_one()
    if _matches(row, code):
        _mark_used(session, code_id, now, refund=True)
        return CodeCheck("ok", row.attempts_left + 1, row.customer_id)
    if row.attempts_left <= 0:
        _mark_used(session, code_id, now, refund=False)
        return CodeCheck("locked")
    return CodeCheck("wrong", row.attempts_left)


def _claim_attempt(session: Session, code_id: int, client: str, now: datetime) -> bool:
    statement = (
        update(LoginCode)
        .where(
            LoginCode.id == code_id,
            LoginCode.client == client,
            LoginCode.used_at.is_(None),
            LoginCode.attempts_left > 0,
            LoginCode.expires_at > now,
        )
        .values(attempts_left=LoginCode.attempts_left - 1)
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(statement).rowcount == 1)


def _unclaimed(session: Session, code_id: int, client: str, now: datetime) -> CodeCheck:
    row = session.execute(
        select(LoginCode).where(LoginCode.id == code_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None or row.client != client:
        return CodeCheck("missing")
    if row.used_at is not None and row.attempts_left > 0:
        return CodeCheck("used")
    if row.used_at is not None or row.attempts_left <= 0:
        return CodeCheck("locked")
    return CodeCheck("expired", row.attempts_left)


def _matches(row: LoginCode, code: str | None) -> bool:
    if code is None or row.customer_id is None:
        return False
    return hmac.compare_digest(code_digest(code, row.salt), row.digest)


def _mark_used(session: Session, code_id: int, now: datetime, *, refund: bool) -> None:
    """Verified (the attempt refunded: attempts_left > 0 marks success) or exhausted."""
    values: dict[str, object] = {"used_at": now}
    if refund:
        values["attempts_left"] = LoginCode.attempts_left + 1
    session.execute(
        update(LoginCode)
        .where(LoginCode.id == code_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def login_code_verified(
    session: Session,
    *,
    code_id: int,
    phone: str,
    client: str,
    customer_id: int,
    since: datetime,
) -> bool:
    """Whether `code_id` was sent to `phone` for `client` on behalf of `customer_id` and
    answered right at or after `since`."""
    query = select(LoginCode.id).where(
        LoginCode.id == code_id,
        LoginCode.phone_key == _key(session, phone),
        LoginCode.client == _client(client),
        LoginCode.customer_id == customer_id,
        LoginCode.used_at >= since,
        LoginCode.attempts_left > 0,
    )
    return session.scalar(query) is not None


def purge_login_codes(session: Session, *, expired_before: datetime) -> int:
    """Delete the codes that expired before `expired_before`; how many were deleted. Keep at
    least as long as the longest rate-limit or lockout window looks back."""
    result = session.execute(delete(LoginCode).where(LoginCode.expires_at < expired_before))
    return int(result.rowcount or 0)
