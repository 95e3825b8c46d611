"""The action server's `/metrics`: open like `/health` (counts and times only), every action
timed by name (bot/metrics.py), on a real action server process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import PROJECT_DIR
from tests.bot.care.scheduler_process import stop, wait_until
from tests.bot.test_health import get, samples
from tests.integration.system import free_port

SECRET = "action-metrics-test-secret-0123456789"


@pytest.fixture
def action_url(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = dict(
        os.environ,
        CAREBOT_ACTION_SECRET=SECRET,
        CAREBOT_VAR_DIR=str(tmp_path),
        CAREBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'crm.db'}",
        RASA_TELEMETRY_ENABLED="false",
    )
    with (tmp_path / "actions.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.action_server", "--port", str(port)],
            cwd=PROJECT_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: get(base + "/health")[0] == 200, 120, "the action server")
        yield base
    finally:
        stop(process)


def call(base: str, action: str, secret: str | None) -> int:
    body = {"next_action": action, "tracker": {"sender_id": "m", "events": []}, "domain": {}}
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    request = urllib.request.Request(base + "/webhook", json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_actions_are_timed_and_the_metrics_need_no_secret(action_url: str) -> None:
    unknown = ("carebot_action_seconds_count", (("action", "unknown"),))
    before = samples(get(action_url + "/metrics")[1]).get(unknown, 0)
    assert call(action_url, "action_that_does_not_exist", None) == 401  # refused, not run
    assert call(action_url, "action_that_does_not_exist", SECRET) == 404
    status, page = get(action_url + "/metrics")
    assert status == 200 and samples(page)[unknown] == before + 1
