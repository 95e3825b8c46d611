from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from crm_helpers import BACKENDS
from sqlalchemy import inspect

from crm_store.db import make_engine
from crm_store.migrate import downgrade, upgrade
from crm_store.models import Base


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_from_empty_downgrade_one_step_and_upgrade_again(
    backend: str, new_database_url: Callable[[str], str]
) -> None:
    url = new_database_url(backend)
    upgrade(url)
    assert _tables(url) == set(Base.metadata.tables)
    downgrade(url, "-1")
    assert "care_messages" not in _tables(url) and "customers" in _tables(url)
    upgrade(url, "head")
    assert _tables(url) == set(Base.metadata.tables)
    downgrade(url, "base")
    assert _tables(url) == set()


@pytest.mark.parametrize("backend", BACKENDS)
def test_models_and_migrations_do_not_drift(
    backend: str, new_database_url: Callable[[str], str]
) -> None:
    url = new_database_url(backend)
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()
