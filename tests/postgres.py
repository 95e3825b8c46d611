"""Throwaway PostgreSQL databases for tests: each is created empty on the server that
CAREBOT_TEST_POSTGRES_URL names (default the local `test` database as `postgres`) and dropped
afterwards, open connections and all.

Without a reachable server the test is skipped, except under CI=true, where it fails: CI must
never pass by skipping the PostgreSQL half of the suite.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.future import create_engine

ADMIN_URL = os.environ.get("CAREBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def admin_engine() -> Engine:
    """An AUTOCOMMIT engine on the server, to create and drop databases; skips the test (fails
    it under CI=true) when the server cannot be reached."""
    engine = create_engine(ADMIN_URL, future=True, isolation_level="AUTOCOMMIT")
    try:
        engine.connect().close()
    except OperationalError as error:
        engine.dispose()
        reason = f"PostgreSQL unreachable at {ADMIN_URL}: {error.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return engine


@contextmanager
def throwaway_databases(prefix: str) -> Iterator[Callable[[], str]]:
    """A factory of new empty databases named `<prefix>_<random>`, each one's URL; all are dropped
    on exit. The server is reached at the first database asked for, so a test that asks for
    none never needs PostgreSQL."""
    admin: Engine | None = None
    created: list[str] = []

    def create() -> str:
        nonlocal admin
        admin = admin or admin_engine()
        name = f"{prefix}_{secrets.token_hex(6)}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        created.append(name)
        return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    try:
        yield create
    finally:
        if admin is not None:
            with admin.connect() as connection:
                for name in created:
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()


@contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """One new empty database's URL, dropped on exit."""
    with throwaway_databases(prefix) as create:
        yield create()
