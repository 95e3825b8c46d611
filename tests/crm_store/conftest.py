"""Fixtures: every `session` test runs on a SQLite file and on a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest
from crm_helpers import BACKENDS, NOW, empty_all_tables
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.future import create_engine
from sqlalchemy.orm import Session

from crm_store.clock import ManualClock
from crm_store.db import make_engine
from crm_store.migrate import upgrade

PG_ADMIN_URL = os.environ.get(
    "CAREBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def _admin_engine() -> Engine:
    engine = create_engine(PG_ADMIN_URL, future=True, isolation_level="AUTOCOMMIT")
    try:
        engine.connect().close()
    except OperationalError as error:
        engine.dispose()
        reason = f"PostgreSQL unreachable at {PG_ADMIN_URL}: {error.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return engine


@pytest.fixture(scope="session")
def new_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """A factory of empty databases: a fresh SQLite file or a throwaway PostgreSQL database."""
    admin: Engine | None = None
    created: list[str] = []

    def make(backend: str) -> str:
        nonlocal admin
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / 'crm.db'}"
        admin = admin or _admin_engine()
        name = f"carebot_test_{secrets.token_hex(6)}"
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        created.append(name)
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    yield make
    if admin is not None:
        with admin.connect() as connection:
            for name in created:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, new_database_url: Callable[[str], str]
) -> Iterator[Engine]:
    url = new_database_url(request.param)
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on a clean database; whatever the test leaves behind is rolled back or deleted."""
    session = Session(bind=engine, future=True, expire_on_commit=False)
    try:
        yield session
    finally:
        session.rollback()
        session.close()
        empty_all_tables(engine)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def committing(engine: Engine) -> Iterator[Engine]:
    """The engine, for a test that commits in transactions of its own (threads racing); emptied
    afterwards, also when the test fails, so the next test starts clean."""
    try:
        yield engine
    finally:
        empty_all_tables(engine)
