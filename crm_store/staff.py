"""Staff users of the console (agents, supervisors, managers, admins)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.audit import record_audit
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.models import STAFF_ROLES, StaffUser
from crm_store.validation import check_choice, check_text

MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class StaffMember:
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    created_at: datetime


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
        row.id, row.username, row.display_name, row.role, bool(row.active), row.created_at
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
    """The active staff member with these credentials, else None (no hint which part was wrong)."""
    row = session.scalars(select(StaffUser).where(StaffUser.username == username.lower())).first()
    if row is None or not row.active or not password_matches(password, row.password_hash):
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
