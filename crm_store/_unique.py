"""Change-or-detect-duplicate inside a SAVEPOINT: a clash never spoils the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session


def try_change(session: Session, apply: Callable[[], Any]) -> bool:
    """Run `apply` and flush in a savepoint; False (change undone) if a constraint refused it.

    `apply` must make the change itself: begin_nested() flushes whatever is pending before the
    savepoint starts, outside its protection.
    """
    try:
        with session.begin_nested():
            apply()
            session.flush()
    except IntegrityError:
        return False
    return True


def try_insert(session: Session, row: Any) -> bool:
    return try_change(session, lambda: session.add(row))
