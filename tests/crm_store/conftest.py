"""Fixtures: every `session` test runs on a SQLite file and on a throwaway PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from crm_helpers import BACKENDS, NOW, empty_all_tables
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.clock import ManualClock
from crm_store.db import make_engine
from crm_store.migrate import upgrade
from tests.postgres import throwaway_databases


@pytest.fixture(scope="session")
def new_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """A factory of empty databases: a fresh SQLite file or a throwaway PostgreSQL database."""
    with throwaway_databases("carebot_test") as new_postgres_database:

        def make(backend: str) -> str:
            if backend == "sqlite":
                return f"sqlite:///{tmp_path_factory.mktemp('db') / 'crm.db'}"
            return new_postgres_database()

        yield make


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
