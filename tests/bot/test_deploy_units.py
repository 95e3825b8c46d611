"""The production process layout: `carebot serve PART` (bot/serve.py) and the systemd units
that run each part (deploy/systemd/, docs/deploy.md)."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import SERVE_PARTS
from bot.serve import PARTS, service_for
from bot.settings import PROJECT_DIR, load_settings
from crm_store import migrate
from tests.bot.care.scheduler_process import stop, wait_until
from tests.bot.test_health import get
from tests.integration.system import free_port

UNITS = PROJECT_DIR / "deploy" / "systemd"
INSTALLED = "/opt/carebot/.venv/bin/carebot"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def process_units() -> list[str]:
    return sorted(
        p.name for p in UNITS.glob("carebot-*.service") if p.name != "carebot-db-upgrade.service"
    )


def test_every_part_has_a_unit_that_waits_for_the_migration_and_restarts() -> None:
    assert set(PARTS) == set(SERVE_PARTS)
    served = set()
    for name in process_units():
        config = unit(name)
        assert "carebot-db-upgrade.service" in config["Unit"]["Requires"]
        assert "carebot-db-upgrade.service" in config["Unit"]["After"]
        assert config["Service"]["Restart"] == "on-failure"
        assert int(config["Unit"]["StartLimitBurst"]) > 1
        command = config["Service"]["ExecStart"].split()
        assert command[:2] == [INSTALLED, "serve"]
        served.add(command[2])
    assert served == set(PARTS)
    upgrade = unit("carebot-db-upgrade.service")["Service"]
    assert (upgrade["Type"], upgrade["ExecStart"]) == ("oneshot", f"{INSTALLED} db-upgrade")


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify`, with the install path pointed at this checkout's carebot."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but systemd-analyze is missing")
        pytest.skip("systemd-analyze is not installed here")
    carebot = Path(sys.executable).with_name("carebot")
    for path in UNITS.glob("carebot*"):
        text = path.read_text().replace(INSTALLED, str(carebot))
        (tmp_path / path.name).write_text(text.replace("/opt/carebot", str(tmp_path)))
    names = [p.name for p in UNITS.glob("carebot*") if p.suffix in {".service", ".target"}]
    names = [n.replace("@.service", "@5005.service") for n in names]
    done = subprocess.run(
        [analyze, "verify", *names], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_serve_builds_what_carebot_run_starts(tmp_path: Path) -> None:
    settings = load_settings({"CAREBOT_VAR_DIR": str(tmp_path), "CAREBOT_API_TOKEN": "t"})
    scheduler = service_for("scheduler", settings)
    assert scheduler.command[1:] == ["-m", "bot.care"]
    assert scheduler.env["CAREBOT_SCHEDULER_HEALTH_PORT"] == "5008"
    rasa = service_for("rasa", settings, tmp_path / "model.tar.gz")
    assert (tmp_path / "run" / "endpoints.yml").exists() and "--enable-api" in rasa.command
    with pytest.raises(ValueError):
        service_for("rasa", settings)


def test_serve_replaces_itself_with_the_part(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    migrate.upgrade(url)
    port = free_port()
    env = dict(
        os.environ,
        CAREBOT_VAR_DIR=str(tmp_path),
        CAREBOT_DATABASE_URL=url,
        CAREBOT_SCHEDULER_HEALTH_PORT=str(port),
        CAREBOT_SCHEDULER_AUTOPLAN="0",
        CAREBOT_API_TOKEN="t",
        RASA_TELEMETRY_ENABLED="false",
    )
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "scheduler"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: get(base + "/ready")[0] == 200, 90, "the scheduler to be ready")
        assert json.loads(get(base + "/ready")[1])["leader"] is True
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")
        assert b"bot.care" in cmdline  # the same process, now the scheduler: no wrapper
    finally:
        stop(process)
