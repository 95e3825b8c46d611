"""A leader lock on the CRM database: of all processes that take it, one holds it.

PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a connection of its own,
held for the life of the process; PostgreSQL releases it when that connection ends, including
when the process is killed. SQLite: an exclusive `fcntl` lock on a file next to the database
file, which the kernel releases when the process dies. The care scheduler polls for it
(bot/care/leader.py).

`migration_lock(url)` is the same pair for schema migrations (`carebot db-upgrade` on several
hosts at once): another advisory key, or another file next to SQLite's, waited for until a
timeout, so one host migrates and the others find the schema at head.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.future import create_engine

log = logging.getLogger(__name__)

# Any fixed 64-bit number identifies the lock; this one reads "carebot care scheduler".
ADVISORY_KEY = 0x6361726562_07
MIGRATION_KEY = 0x6361726562_0D  # another key: migrations never wait for the scheduler
MIGRATION_LOCK_TIMEOUT_S = 600.0
MIGRATION_LOCK_POLL_S = 0.5


class LeaderLock(Protocol):
    def try_acquire(self) -> bool: ...

    def still_held(self) -> bool: ...

    def release(self) -> None: ...


class AdvisoryLock:
    """A PostgreSQL advisory lock on a dedicated connection."""

    def __init__(self, engine: Engine, key: int = ADVISORY_KEY) -> None:
        self.engine, self.key = engine, key
        self.connection: Connection | None = None

    def try_acquire(self) -> bool:
        if self.connection is None:
            self.connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        taken = self.connection.exec_driver_sql(f"SELECT pg_try_advisory_lock({int(self.key)})")
        if bool(taken.scalar()):
            return True
        self.release()
        return False

    def still_held(self) -> bool:
        """The connection still lives (if it died, PostgreSQL released the lock with it)."""
        if self.connection is None:
            return False
        try:
            held = self.connection.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                f" AND pid = pg_backend_pid() AND objid = {int(self.key) & 0xFFFFFFFF}"
            )
            return bool(held.scalar())
        except DBAPIError:
            self.release()
            return False

    def release(self) -> None:
        if self.connection is not None:
            connection, self.connection = self.connection, None
            with contextlib.suppress(DBAPIError):
                connection.close()  # ends the session, which releases the lock


class FileLock:
    """An exclusive fcntl lock on `path`; for SQLite, whose database is a local file anyway."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return True

    def still_held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)  # closing the descriptor drops the flock


def lock_for(engine: Engine) -> LeaderLock:
    """The lock that fits the CRM database: advisory on PostgreSQL, a file next to SQLite's."""
    url = make_url(str(engine.url))
    if url.get_backend_name() == "postgresql":
        return AdvisoryLock(engine)
    if url.database in (None, "", ":memory:"):
        raise ValueError("the care scheduler needs a file or server database, not :memory:")
    return FileLock(Path(f"{url.database}.scheduler.lock"))


class LockTimeout(TimeoutError):
    """Another process held the migration lock for longer than we were willing to wait."""


@contextlib.contextmanager
def migration_lock(
    url: str,
    timeout_s: float = MIGRATION_LOCK_TIMEOUT_S,
    poll_s: float = MIGRATION_LOCK_POLL_S,
) -> Iterator[None]:
    """Held while the schema of the database at `url` is migrated; waits (polling) for another
    process that holds it, at most `timeout_s`. An in-memory SQLite database needs none."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, future=True, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                take = f"SELECT pg_try_advisory_lock({MIGRATION_KEY})"
                _wait_for(
                    lambda: bool(connection.exec_driver_sql(take).scalar()), url, timeout_s, poll_s
                )
                try:
                    yield
                finally:
                    connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_KEY})")
        finally:
            engine.dispose()
    elif parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        lock_file = FileLock(Path(f"{parsed.database}.migrate.lock"))
        _wait_for(lock_file.try_acquire, url, timeout_s, poll_s)
        try:
            yield
        finally:
            lock_file.release()
    else:
        yield


def _wait_for(take: Callable[[], bool], url: str, timeout_s: float, poll_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = False
    while not take():
        if time.monotonic() >= deadline:
            raise LockTimeout(f"another process migrates {_safe(url)}: waited {timeout_s:.0f} s")
        if not waiting:
            log.info("waiting for another process to finish migrating the database")
            waiting = True
        time.sleep(poll_s)


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
