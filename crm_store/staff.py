"""Staff users of the console (agents, supervisors, managers, admins), their passwords, login
throttling and session versions (docs/security.md)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.audit import diff, record_audit
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.models import STAFF_ROLES, StaffUser
from crm_store.validation import check_choice, check_text

MIN_PASSWORD_LENGTH = 8
MAX_FAILED_LOGINS = 5  # wrong passwords in a row before the account is locked
FIRST_LOCKOUT = timedelta(minutes=1)  # doubled with each further wrong password
MAX_LOCKOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class StaffMember:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    created_at: datetime
    # Bumped on logout: a console cookie signed with an older version is void.
    session_version: int = 0


# argon2id with the library's defaults (RFC 9106's second recommendation: 64 MiB, 3 passes).
_HASHER = PasswordHasher()
LEGACY_PREFIX = "pbkdf2_sha256$"  # hashes from before argon2; upgraded at the next login


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def password_matches(password: str, stored: str | None) -> bool:
    if not stored or len(password) < MIN_PASSWORD_LENGTH:
        return False
    if stored.startswith(LEGACY_PREFIX):
        return _legacy_matches(password, stored)
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """A legacy PBKDF2 hash, or argon2 with weaker parameters than today's."""
    return stored.startswith(LEGACY_PREFIX) or _HASHER.check_needs_rehash(stored)


def _legacy_matches(password: str, stored: str) -> bool:
    if stored.count("$") != 3:
        return False
    _, iterations, salt, _ = stored.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations))
    return hmac.compare_digest(f"{LEGACY_PREFIX}{iterations}${salt}${digest.hex()}", stored)


def _record(row: StaffUser) -> StaffMember:
    return StaffMember(
        row.id,
        row.username,
        row.display_name,
        row.role,
        bool(row.active),
        row.created_at,
        int(row.session_version or 0),
    )


def create_staff_user(
    session: Session,
    *,
    username: str,
    display_name: str,
    role: str,
    password: str | None = None,
    clock: Clock = utcnow,
) -> StaffMember:
    row = StaffUser(
        username=check_text(username, "username", 64).lower(),
        display_name=check_text(display_name, "display name", 64),
        role=check_choice(role, STAFF_ROLES, "role"),
        active=True,
        password_hash=hash_password(password) if password is not None else None,
        created_at=clock(),
    )
    if not try_insert(session, row):
        raise Conflict(f"username {row.username} is taken")
    return _record(row)


def _row(session: Session, staff_id: int) -> StaffUser:
    row = session.get(StaffUser, staff_id)
    if row is None:
        raise NotFound(f"no staff user {staff_id}")
    return row


def get_staff_user(session: Session, *, staff_id: int) -> StaffMember:
    return _record(_row(session, staff_id))


def find_staff_user(session: Session, *, username: str) -> StaffMember | None:
    row = session.scalars(select(StaffUser).where(StaffUser.username == username.lower())).first()
    return _record(row) if row else None


def list_staff_users(session: Session, *, role: str | None = None) -> list[StaffMember]:
    query = select(StaffUser).order_by(StaffUser.username)
    if role is not None:
        query = query.where(StaffUser.role == check_choice(role, STAFF_ROLES, "role"))
    return [_record(row) for row in session.scalars(query)]


def authenticate_staff(session: Session, *, username: str, password: str) -> StaffMember | None:
    """The active staff member with these credentials, else None (no hint which part was wrong,
    nor in the time it takes). One transaction around the slow check: fine for the command line;
    the console reads, checks and writes apart (bot/console/logins.py)."""
    row = session.scalars(select(StaffUser).where(StaffUser.username == username.lower())).first()
    matches = check_password(password, row.password_hash if row else None)
    if row is None or not row.active or not matches:
        return None
    if needs_rehash(row.password_hash):
        row.password_hash = hash_password(password)
        session.flush()
    return _record(row)


def set_staff_role(
    session: Session, *, staff_id: int, role: str, actor: str, clock: Clock = utcnow
) -> StaffMember:
    row = _row(session, staff_id)
    before, row.role = row.role, check_choice(role, STAFF_ROLES, "role")
    record_audit(
        session,
        actor=actor,
        action="set_staff_role",
        entity="staff_user",
        entity_id=staff_id,
        changes={"role": [before, role]},
        clock=clock,
    )
    session.flush()
    return _record(row)


def deactivate_staff_user(
    session: Session, *, staff_id: int, actor: str, clock: Clock = utcnow
) -> StaffMember:
    row = _row(session, staff_id)
    row.active = False
    record_audit(
        session,
        actor=actor,
        action="deactivate_staff_user",
        entity="staff_user",
        entity_id=staff_id,
        changes={"active": [True, False]},
        clock=clock,
    )
    session.flush()
    return _record(row)


# Console logins (bot/console/logins.py): the account is read in one short transaction, the
# password checked with none open, the outcome written in another short one.


@dataclass(frozen=True)
class LoginAccount:
    """An account as a login attempt reads it, before the (slow) password check."""

    member: StaffMember
    password_hash: str | None
    failed_logins: int
    locked_until: datetime | None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


def find_login_account(session: Session, *, username: str) -> LoginAccount | None:
    row = session.scalars(select(StaffUser).where(StaffUser.username == username.lower())).first()
    if row is None:
        return None
    return LoginAccount(
        _record(row), row.password_hash, int(row.failed_logins or 0), row.locked_until
    )


@lru_cache(maxsize=1)
def dummy_password_hash() -> str:
    """A hash of a random secret with today's algorithm and cost: what an unknown username's
    password is checked against, so that it takes as long to refuse as a wrong password."""
    return _HASHER.hash(secrets.token_urlsafe(24))


def check_password(password: str, stored: str | None) -> bool:
    """The slow comparison (argon2id: ~64 MiB and a good fraction of a second): run it with no
    transaction open. Without a stored hash (no such account, or one without a password) the
    same work is done against `dummy_password_hash`, and the answer is no."""
    matches = password_matches(password, stored or dummy_password_hash())
    return matches and stored is not None


def upgraded_hash(password: str, stored: str | None) -> str | None:
    """A fresh hash of a password that matched a legacy or weaker hash, else None (slow too)."""
    return hash_password(password) if stored and needs_rehash(stored) else None


def lockout(failures: int) -> timedelta | None:
    """How long `failures` wrong passwords in a row lock an account: not at all before
    MAX_FAILED_LOGINS, then FIRST_LOCKOUT, doubled with each further one, at most MAX_LOCKOUT."""
    if failures < MAX_FAILED_LOGINS:
        return None
    doublings = min(failures - MAX_FAILED_LOGINS, 16)  # 2**16 minutes is past the cap anyway
    return min(FIRST_LOCKOUT * 2**doublings, MAX_LOCKOUT)


def _locked_row(session: Session, staff_id: int) -> StaffUser:
    """The row, locked until the transaction ends (PostgreSQL; SQLite's BEGIN IMMEDIATE already
    serialises writers), so that concurrent attempts count every failure."""
    row = session.get(StaffUser, staff_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no staff user {staff_id}")
    return row


def record_login_refused(
    session: Session,
    *,
    username: str,
    account: LoginAccount | None,
    reason: str,
    address: str,
    clock: Clock = utcnow,
) -> datetime | None:
    """Audit a refused login (reason: unknown, inactive, locked, password). A wrong password on
    an account that is not locked counts towards the lockout; returns when the lock ends."""
    changes: dict[str, object] = {"reason": reason, "address": address}
    locked_until = None
    if account is not None and reason == "password":
        row = _locked_row(session, account.member.id)
        before = {"failed_logins": row.failed_logins, "locked_until": row.locked_until}
        row.failed_logins = int(row.failed_logins or 0) + 1
        pause = lockout(row.failed_logins)
        if pause is not None:
            row.locked_until = clock() + pause
        locked_until = row.locked_until
        changes |= diff(before, {"failed_logins": row.failed_logins, "locked_until": locked_until})
        session.flush()
    record_audit(
        session,
        actor="anonymous",
        action="login_failed",
        entity="staff_user",
        entity_id=account.member.id if account else username[:64] or "-",
        changes=changes,
        clock=clock,
    )
    return locked_until


def record_login(
    session: Session,
    *,
    account: LoginAccount,
    new_hash: str | None,
    address: str,
    clock: Clock = utcnow,
) -> StaffMember | None:
    """A correct password: the failures are forgotten, an upgraded hash is stored, the login is
    audited. None (audited as refused) if the account changed since it was read: deactivated,
    locked by concurrent attempts, or given another password."""
    row = _locked_row(session, account.member.id)
    stale = row.locked_until is not None and row.locked_until > clock()
    if not row.active or stale or row.password_hash != account.password_hash:
        record_login_refused(
            session,
            username=row.username,
            account=account,
            reason="changed",
            address=address,
            clock=clock,
        )
        return None
    before = {"failed_logins": row.failed_logins, "locked_until": row.locked_until}
    row.failed_logins, row.locked_until = 0, None
    changes: dict[str, object] = {"address": address}
    changes |= diff(before, {"failed_logins": 0, "locked_until": None})
    if new_hash is not None:
        row.password_hash = new_hash
        changes["password_rehashed"] = True
    record_audit(
        session,
        actor=f"staff:{row.id}",
        action="login",
        entity="staff_user",
        entity_id=row.id,
        changes=changes,
        clock=clock,
    )
    session.flush()
    return _record(row)


def end_staff_sessions(
    session: Session, *, staff_id: int, actor: str, action: str = "logout", clock: Clock = utcnow
) -> StaffMember:
    """Void every console cookie of this account (they carry the session version they were
    signed with): on logout, and whenever its password changes."""
    row = _locked_row(session, staff_id)
    before = int(row.session_version or 0)
    row.session_version = before + 1
    record_audit(
        session,
        actor=actor,
        action=action,
        entity="staff_user",
        entity_id=staff_id,
        changes={"session_version": [before, before + 1]},
        clock=clock,
    )
    session.flush()
    return _record(row)
