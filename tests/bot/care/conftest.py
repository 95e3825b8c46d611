"""Fixtures for the care scheduler: migrated CRM databases (SQLite file, throwaway PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine

from crm_store.db import make_engine
from crm_store.migrate import upgrade
from tests.postgres import throwaway_databases


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[Callable[[], str]]:
    """A factory of migrated throwaway PostgreSQL databases; under CI=true it must be there."""
    with throwaway_databases("carebot_care") as new_database:

        def make() -> str:
            url = new_database()
            upgrade(url)
            return url

        yield make


@pytest.fixture
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('care') / 'crm.db'}"
    upgrade(url)
    return url


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()
