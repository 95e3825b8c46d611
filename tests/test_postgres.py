"""The throwaway-database helper every PostgreSQL test uses (tests/postgres.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests import postgres
from tests.integration.system import free_port


def exists(name: str) -> bool:
    admin = postgres.admin_engine()
    try:
        with admin.connect() as connection:
            query = text("SELECT count(*) FROM pg_database WHERE datname = :name")
            return bool(connection.scalar(query, {"name": name}))
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_each_database_is_new_and_empty_and_dropped_afterwards() -> None:
    with postgres.throwaway_databases("carebot_helper") as create:
        first, second = create(), create()
        names = [url.rsplit("/", 1)[1] for url in (first, second)]
        assert names[0] != names[1] and all(n.startswith("carebot_helper_") for n in names)
        assert all(exists(name) for name in names)
    assert not any(exists(name) for name in names)
    with postgres.throwaway_database("carebot_helper") as url:
        name = url.rsplit("/", 1)[1]
        assert exists(name)
    assert not exists(name)


def test_without_postgresql_a_test_skips_but_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres, "ADMIN_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true but PostgreSQL unreachable"):
        postgres.admin_engine()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL unreachable"):
        postgres.admin_engine()
    with postgres.throwaway_databases("never") as create:  # asked for nothing: no server needed
        assert callable(create)
