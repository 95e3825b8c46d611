"""The scheduler's leadership: of all scheduler processes on one CRM database, one runs jobs.

The lock itself is the CRM database's (`crm_store.locks`: a PostgreSQL advisory lock, or a file
lock beside a SQLite file); a second process polls until it can take it, so it takes over when
the leader stops and never runs jobs beside it.

`LEADERSHIP` tells the process's health endpoint (bot/care/service.py) whether it leads: set
when the lock is taken, cleared whenever the process waits for it again (after losing it).
"""

from __future__ import annotations

import threading
import time

from bot.metrics import SCHEDULER_LEADER
from crm_store.locks import LeaderLock

DEFAULT_POLL_S = 5.0


class Leadership:
    """Whether this process leads, and since when (monotonic seconds), for its readiness."""

    def __init__(self) -> None:
        self.leading = False
        self.since: float | None = None

    def set(self, leading: bool) -> None:
        self.leading, self.since = leading, time.monotonic() if leading else None
        SCHEDULER_LEADER.set(1 if leading else 0)


LEADERSHIP = Leadership()


def wait_for_leadership(
    lock: LeaderLock, stop: threading.Event, poll_s: float = DEFAULT_POLL_S
) -> bool:
    """Polls until the lock is ours (True) or `stop` is set (False)."""
    LEADERSHIP.set(False)
    while not stop.is_set():
        if lock.try_acquire():
            LEADERSHIP.set(True)
            return True
        stop.wait(poll_s)
    return False
