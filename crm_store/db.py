"""Engines and sessions. Nothing here runs at import time; the caller owns every transaction."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.future import create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

DEFAULT_URL = "sqlite:///var/crm.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_CACHE_KIB = 65_536


def database_url() -> str:
    """The CRM database URL from CAREBOT_DATABASE_URL; SQLite parents are created on demand."""
    url = os.environ.get("CAREBOT_DATABASE_URL", DEFAULT_URL)
    _ensure_sqlite_parent(url)
    return url


def _ensure_sqlite_parent(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str) -> Engine:
    _ensure_sqlite_parent(url)
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, future=True, pool_pre_ping=True)
    file_database = make_url(url).database not in (None, "", ":memory:")
    # SQLAlchemy 1.4 opens a new connection per session for a SQLite file (NullPool): every
    # transaction paid a connect, its pragmas and a close. Connections are kept instead; the
    # pool hands each to one thread at a time, so a thread other than its creator may use it.
    pooling: dict[str, Any] = {"poolclass": QueuePool} if file_database else {}
    engine = create_engine(
        url,
        future=True,
        connect_args={
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            **({"check_same_thread": False} if file_database else {}),
        },
        **pooling,
    )
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    """Foreign keys, WAL, a busy timeout, and real BEGINs.

    pysqlite opens transactions lazily (only before DML), which breaks SAVEPOINT and lets a
    read-then-write race; we switch that off and emit BEGIN ourselves, as SQLAlchemy's docs advise.
    The BEGIN is IMMEDIATE: a deferred transaction that has read cannot wait for another writer
    (SQLite answers "database is locked" at once to avoid a deadlock), which the Rasa server's
    turn log and the action server hit when they write at the same moment. Immediate
    transactions queue for the write lock instead (up to the busy timeout); SQLite allows one
    writer at a time anyway, and PostgreSQL is the database for concurrency.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
        if engine.url.database not in (None, "", ":memory:"):
            # WAL lets readers and one writer overlap; NORMAL sync is durable across crashes of
            # the process (a power cut may lose the last commits), and much faster.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, future=True, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit if the block succeeds, roll back if it raises."""
    session = Session(bind=engine, future=True, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(engine: Engine) -> bool:
    """True when the database answers `SELECT 1` (readiness probes). A raw DBAPI connection:
    no BEGIN, so on SQLite it never queues behind a writer for the write lock."""
    try:
        connection = engine.raw_connection()
    except Exception:
        return False
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        cursor.close()
        return True
    except Exception:
        return False
    finally:
        connection.close()
