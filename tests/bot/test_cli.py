from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main


@pytest.fixture
def crm_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    monkeypatch.setenv("CAREBOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CAREBOT_DATABASE_URL", url)
    return url


def test_db_upgrade_creates_the_schema(crm_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db-upgrade"]) == 0
    assert crm_db in capsys.readouterr().out


def test_seed_fills_an_empty_database_once(crm_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    from crm_store.customers import list_customers
    from crm_store.db import make_engine, session_scope

    assert main(["seed", "--customers", "12"]) == 0
    assert "seeded 12 customers" in capsys.readouterr().out
    with session_scope(make_engine(crm_db)) as session:
        assert len(list_customers(session, limit=100)) == 12

    assert main(["seed", "--customers", "12"]) == 1
    assert "already has customers" in capsys.readouterr().err


def test_run_stops_with_one_clear_line_when_the_database_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bot.training

    url = "postgresql://postgres@127.0.0.1:1/nowhere"
    monkeypatch.setenv("CAREBOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CAREBOT_DATABASE_URL", url)
    monkeypatch.setattr(bot.training, "ensure_model", lambda project_dir: tmp_path / "m.tar.gz")
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert f"cannot use the CRM database {url}" in err and "Traceback" not in err


@pytest.fixture(autouse=True)
def keep_umask() -> Iterator[None]:
    """`carebot run` narrows the process umask for var/; give the test process its own back."""
    mask = os.umask(0o022)
    os.umask(mask)
    yield
    os.umask(mask)


def _customers(url: str) -> int:
    from crm_store.customers import list_customers
    from crm_store.db import make_engine, session_scope

    with session_scope(make_engine(url)) as session:
        return len(list_customers(session, limit=5))


def test_demo_data_is_seeded_only_when_asked_for(crm_db: str) -> None:
    from bot.cli import prepare_database

    assert prepare_database(crm_db) and _customers(crm_db) == 0
    assert prepare_database(crm_db, demo=True) and _customers(crm_db) == 5


def test_demo_data_never_goes_into_a_server_database(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import prepare_database
    from crm_store import demo, migrate

    def refuse(*args: object, **kwargs: object) -> int:
        raise AssertionError("demo data seeded into PostgreSQL")

    monkeypatch.setattr(migrate, "upgrade", lambda url: None)
    monkeypatch.setattr(demo, "ensure_demo_data", refuse)
    assert prepare_database("postgresql://carebot@127.0.0.1/crm", demo=True)
