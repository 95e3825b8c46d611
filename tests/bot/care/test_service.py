"""`make run` starts the care scheduler after Rasa, with what it needs to call Rasa's API."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.runtime import Service, Stack, care_scheduler, wait_until_ready
from bot.settings import load_settings


def test_the_scheduler_service_knows_the_database_rasa_and_the_token(tmp_path: Path) -> None:
    settings = load_settings(
        {"CAREBOT_VAR_DIR": str(tmp_path), "CAREBOT_RASA_PORT": "6005", "CAREBOT_API_TOKEN": "k"}
    )
    service = care_scheduler(settings, {"CAREBOT_SCHEDULER_AUTOPLAN": "0"})
    assert (service.name, service.command[1:]) == ("scheduler", ["-m", "bot.care"])
    assert service.env["CAREBOT_DATABASE_URL"] == f"sqlite:///{tmp_path / 'crm.db'}"
    assert (service.env["CAREBOT_RASA_PORT"], service.env["CAREBOT_API_TOKEN"]) == ("6005", "k")
    assert service.env["CAREBOT_SCHEDULER_AUTOPLAN"] == "0"
    assert service.env["RASA_TELEMETRY_ENABLED"] == "false"


def test_a_service_without_a_health_url_is_ready_once_it_runs(tmp_path: Path) -> None:
    service = Service("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"], "", {})
    service.start(tmp_path, None)
    try:
        wait_until_ready(service, timeout_s=5)
    finally:
        service.stop()


def test_the_stack_finds_its_services_by_name(tmp_path: Path) -> None:
    stack = Stack(load_settings({"CAREBOT_VAR_DIR": str(tmp_path)}), tmp_path / "model.tar.gz")
    rasa = Service("rasa", ["true"], "", {})
    stack.services += [rasa, Service("scheduler", ["true"], "", {})]
    assert stack.service("rasa") is rasa
