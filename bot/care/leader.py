"""The scheduler's leadership: of all scheduler processes on one CRM database, one runs jobs.

The lock itself is the CRM database's (`crm_store.locks`: a PostgreSQL advisory lock, or a file
lock beside a SQLite file); a second process polls until it can take it, so it takes over when
the leader stops and never runs jobs beside it.
"""

from __future__ import annotations

import threading

from crm_store.locks import LeaderLock

DEFAULT_POLL_S = 5.0


def wait_for_leadership(
    lock: LeaderLock, stop: threading.Event, poll_s: float = DEFAULT_POLL_S
) -> bool:
    """Polls until the lock is ours (True) or `stop` is set (False)."""
    while not stop.is_set():
        if lock.try_acquire():
            return True
        stop.wait(poll_s)
    return False
