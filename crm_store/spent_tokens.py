"""Single-use values (docs/security.md): a WeChat link token, a signed push's nonce, ...

`spend_token` records that a value was used and says whether it was the first use. It is one
`INSERT ... ON CONFLICT DO UPDATE ... WHERE expired` statement, so the database decides: of
several transactions spending the same value at once, on SQLite or on PostgreSQL, exactly one
is told True. A row whose `expires_at` has passed no longer counts: the value may be spent again
(it replaces the row), and `purge_spent_tokens` deletes such rows. A value is valid up to and
including its `expires_at`, like the link tokens it guards.

The caller owns the transaction: rolled back, the spend is undone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crm_store.clock import Clock, as_utc
from crm_store.errors import InvalidInput
from crm_store.models import SpentToken

MAX_SCOPE_CHARS = 16
MAX_KEY_CHARS = 128
_UPSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def spend_token(
    session: Session, *, scope: str, key: str, expires_at: datetime, clock: Clock
) -> bool:
    """True the first time `(scope, key)` is spent; False while an earlier spend is unexpired."""
    _check(scope, key)
    insert = _upsert_for(session)(SpentToken).values(
        scope=scope, key=key, expires_at=as_utc(expires_at)
    )
    statement = insert.on_conflict_do_update(
        index_elements=[SpentToken.scope, SpentToken.key],
        set_={"expires_at": insert.excluded.expires_at},
        where=SpentToken.expires_at < clock(),
    )
    return bool(session.execute(statement).rowcount == 1)


def token_is_spent(session: Session, *, scope: str, key: str, clock: Clock) -> bool:
    """Whether `(scope, key)` was spent and has not expired; spends nothing."""
    _check(scope, key)
    row = session.execute(
        select(SpentToken.key).where(
            SpentToken.scope == scope, SpentToken.key == key, SpentToken.expires_at >= clock()
        )
    ).first()
    return row is not None


def purge_spent_tokens(session: Session, *, clock: Clock) -> int:
    """Delete the rows whose value has expired; how many were deleted."""
    result = session.execute(delete(SpentToken).where(SpentToken.expires_at < clock()))
    return int(result.rowcount or 0)


def _check(scope: str, key: str) -> None:
    if not 0 < len(scope) <= MAX_SCOPE_CHARS:
        raise InvalidInput(f"a spent token's scope has 1 to {MAX_SCOPE_CHARS} characters")
    if not 0 < len(key) <= MAX_KEY_CHARS:
        raise InvalidInput(f"a spent token's key has 1 to {MAX_KEY_CHARS} characters")


def _upsert_for(session: Session) -> Any:
    """The dialect's INSERT with ON CONFLICT; the generic INSERT has none."""
    dialect = session.get_bind().dialect.name
    if dialect not in _UPSERTS:
        raise NotImplementedError(f"spent tokens need SQLite or PostgreSQL, not {dialect}")
    return _UPSERTS[dialect]
