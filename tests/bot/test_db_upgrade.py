"""`carebot db-upgrade` as its own step (docs/deploy.md): under a lock, so hosts that run it at
once migrate once; `carebot run` in the production profile does not migrate unless asked."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.future import create_engine

from bot.cli import main
from bot.settings import PROJECT_DIR
from crm_store import migrate
from crm_store.locks import LockTimeout, migration_lock
from tests.postgres import throwaway_database

WAITING = "waiting for another process to finish migrating"


def db_upgrade(url: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = dict(
        os.environ,
        CAREBOT_DATABASE_URL=url,
        CAREBOT_VAR_DIR=str(tmp_path),
        RASA_TELEMETRY_ENABLED="false",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "db-upgrade"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def versions(url: str) -> list[str]:
    engine = create_engine(url, future=True)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return []
            return [row[0] for row in connection.execute(text("SELECT * FROM alembic_version"))]
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_two_hosts_upgrading_at_once_migrate_once(tmp_path: Path) -> None:
    with throwaway_database("carebot_upgrade") as url:
        with migration_lock(url):  # a third host is migrating: both must wait for it
            runs = [db_upgrade(url, tmp_path / str(n)) for n in range(2)]
            waited = [_stderr_until(run, WAITING) for run in runs]
            assert all(WAITING in text for text in waited), waited
            assert versions(url) == [] and all(run.poll() is None for run in runs)
        outputs = [run.communicate(timeout=300) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        assert all(migrate.head_revision() in out for out, _ in outputs)
        assert versions(url) == [migrate.head_revision()]
        assert migrate.current_revision(url) == migrate.head_revision()


@pytest.mark.postgres
def test_two_upgrades_started_together_both_succeed(tmp_path: Path) -> None:
    with throwaway_database("carebot_upgrade") as url:
        runs = [db_upgrade(url, tmp_path / str(n)) for n in range(2)]
        outputs = [run.communicate(timeout=300) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], outputs
        assert versions(url) == [migrate.head_revision()]


def _stderr_until(run: subprocess.Popen[str], needle: str, timeout_s: float = 120) -> str:
    """What `run` wrote to stderr up to the line holding `needle` (or its end, or the timeout)."""
    assert run.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout_s
    while needle not in seen and time.monotonic() < deadline:
        line = run.stderr.readline()
        if not line:
            break
        seen += line
    return seen


@pytest.mark.postgres
def test_a_migration_lock_held_elsewhere_times_out_with_a_clear_error() -> None:
    with throwaway_database("carebot_upgrade") as url, migration_lock(url):
        waiting = pytest.raises(LockTimeout, match="another process migrates")
        with waiting, migration_lock(url, timeout_s=0.5, poll_s=0.1):
            pass


def test_sqlite_migrations_take_a_file_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    with migration_lock(url):
        assert (tmp_path / "crm.db.migrate.lock").exists()
        with pytest.raises(LockTimeout), migration_lock(url, timeout_s=0.3, poll_s=0.1):
            pass
    with migration_lock(url, timeout_s=0.3):  # released: the next one takes it at once
        pass


def test_run_without_demo_does_not_migrate_and_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import bot.training

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    monkeypatch.setenv("CAREBOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CAREBOT_DATABASE_URL", url)
    monkeypatch.delenv("CAREBOT_DEMO", raising=False)
    monkeypatch.setattr(bot.training, "ensure_model", lambda project_dir: tmp_path / "m.tar.gz")
    assert main(["run"]) == 2
    assert "run `carebot db-upgrade` first" in capsys.readouterr().err
    assert versions(url) == []  # nothing was migrated


def test_run_goes_on_once_the_schema_is_at_head(tmp_path: Path) -> None:
    from bot.cli import schema_is_current

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    assert not schema_is_current(url)
    assert main_db_upgrade(url, tmp_path) == 0
    assert schema_is_current(url)


def main_db_upgrade(url: str, tmp_path: Path) -> int:
    run = db_upgrade(url, tmp_path)
    run.communicate(timeout=300)
    return run.returncode
