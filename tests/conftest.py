"""Starts the real system (`carebot run`) once per test session on free loopback ports,
shared by the integration tests (tests/integration) and the browser tests (tests/browser)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import PROJECT_DIR
from tests.integration.system import REST_SECRET, TOKEN, System, free_port, wait_for

REDIS_URL = "redis://127.0.0.1:6379/1"


def reachable_redis() -> str | None:
    """Redis for the lock store; under CI it must be there, locally its absence skips its test."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but Redis is unreachable at {REDIS_URL}")
        return None
    return REDIS_URL


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The system as `make run` starts it: demo mode, SQLite, Redis when it is there."""
    var_dir = tmp_path_factory.mktemp("var")
    env = {
        "CAREBOT_DATABASE_URL": f"sqlite:///{var_dir / 'crm.db'}",
        # the care scheduler runs (it dispatches what a test queues) but plans nothing itself,
        # so no proactive message disturbs the other tests (see test_care_scheduler.py)
        "CAREBOT_SCHEDULER_AUTOPLAN": "0",
        "CAREBOT_SCHEDULER_DISPATCH_EVERY": "1",
    }
    redis_url = reachable_redis()
    if redis_url:
        env["CAREBOT_REDIS_URL"] = redis_url
    # the brand's own site embeds the widget from another origin (tests/browser)
    shop_port = free_port()
    env["CAREBOT_ALLOWED_ORIGINS"] = f"http://localhost:{shop_port}"
    for running in running_system(var_dir, env, demo=True, redis_url=redis_url):
        running.shop_port = shop_port
        yield running


def running_system(
    var_dir: Path, extra_env: dict[str, str], *, demo: bool, redis_url: str | None
) -> Iterator[System]:
    """`carebot run` on free loopback ports with `extra_env`, until the generator is closed."""
    rasa_port, action_port, wechat_sim_port = free_port(), free_port(), free_port()
    console_port = free_port()
    health_ports = {  # the health, readiness and metrics endpoints (bot/health.py)
        "scheduler": free_port(),
        "log-consumer": free_port(),
        "rasa": free_port(),
    }
    env = dict(
        os.environ,
        CAREBOT_VAR_DIR=str(var_dir),
        CAREBOT_RASA_PORT=str(rasa_port),
        CAREBOT_ACTION_PORT=str(action_port),
        CAREBOT_WECHAT_SIM_PORT=str(wechat_sim_port),
        CAREBOT_CONSOLE_PORT=str(console_port),
        CAREBOT_SCHEDULER_HEALTH_PORT=str(health_ports["scheduler"]),
        CAREBOT_CONSUMER_HEALTH_PORT=str(health_ports["log-consumer"]),
        CAREBOT_RASA_METRICS_PORT=str(health_ports["rasa"]),
        CAREBOT_API_TOKEN=TOKEN,
        CAREBOT_REST_SECRET=REST_SECRET,
        RASA_TELEMETRY_ENABLED="false",
        CAREBOT_ACTION_TIMEOUT="10",  # production: 20 s; 4 s flaked on a loaded 2-core machine
        **extra_env,
    )
    env.pop("CAREBOT_WECHAT_APP_ID", None)  # never a real OA: the WeChat simulator stands in
    env.pop("CAREBOT_DEMO", None)
    log = var_dir / "carebot-run.log"
    command = [sys.executable, "-m", "bot.cli", "run", *(["--demo"] if demo else [])]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    running = System(
        process,
        f"http://127.0.0.1:{rasa_port}",
        f"http://127.0.0.1:{action_port}",
        var_dir,
        log,
        redis_url,
        wechat_sim_url=f"http://127.0.0.1:{wechat_sim_port}",
        console_url=f"http://127.0.0.1:{console_port}",
        health_urls={name: f"http://127.0.0.1:{port}" for name, port in health_ports.items()},
    )
    try:
        wait_for(running.rasa_url + "/", process, log, timeout_s=600)
        wait_for(f"{running.console_url}/health", process, log, timeout_s=120)  # started last
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that stops the shared system runs after every test that uses it (a stable sort)."""
    items.sort(key=lambda item: item.get_closest_marker("stops_system") is not None)
