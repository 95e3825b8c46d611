"""The production profile (`carebot run` without `--demo`): PostgreSQL for the CRM, Redis, the
REST channel with its credential, one allowed web origin. Started once for tests/security."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import PROJECT_DIR
from tests.bot.test_log_consumer import AMQP_URL, rabbitmq_is_up
from tests.conftest import reachable_redis, running_system
from tests.integration.system import System
from tests.postgres import throwaway_database

SHOP_ORIGIN = "https://shop.example.com"


@pytest.fixture(scope="session")
def postgres_crm_url() -> Iterator[str]:
    """A throwaway PostgreSQL database (under CI=true PostgreSQL must be there)."""
    with throwaway_database("carebot_prod") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_tracker_url() -> Iterator[str]:
    """Rasa's conversation store in a PostgreSQL database of its own."""
    with throwaway_database("carebot_tracker") as url:
        yield url


@pytest.fixture(scope="session")
def event_queue() -> tuple[str, str]:
    """This run's RabbitMQ queue and exchange (under CI=true RabbitMQ must be there)."""
    if not rabbitmq_is_up():
        pytest.skip("RabbitMQ is not running here")
    suffix = secrets.token_hex(5)
    return f"carebot_prod_{suffix}", f"carebot-prod-{suffix}"


@pytest.fixture(scope="session")
def production(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_crm_url: str,
    postgres_tracker_url: str,
    event_queue: tuple[str, str],
) -> Iterator[System]:
    """docs/deploy.md's profile on one host: the CRM and Rasa's conversations on PostgreSQL,
    locks in Redis, turns through RabbitMQ to `carebot log-consumer`."""
    var_dir = tmp_path_factory.mktemp("prod-var")
    env = {
        "CAREBOT_DATABASE_URL": postgres_crm_url,
        "CAREBOT_TRACKER_URL": postgres_tracker_url,
        "CAREBOT_EVENT_BROKER_URL": AMQP_URL,
        "CAREBOT_EVENT_QUEUE": event_queue[0],
        "CAREBOT_EVENT_EXCHANGE": event_queue[1],
        "CAREBOT_ALLOWED_ORIGINS": SHOP_ORIGIN,
        "CAREBOT_SCHEDULER_AUTOPLAN": "0",
    }
    redis_url = reachable_redis()
    if redis_url:
        env["CAREBOT_REDIS_URL"] = redis_url
    upgrade_schema(postgres_crm_url, var_dir)  # its own step: `carebot run` does not migrate
    yield from running_system(var_dir, env, demo=False, redis_url=redis_url)


def upgrade_schema(database_url: str, var_dir: Path) -> None:
    """`carebot db-upgrade`, as an operator runs it before starting the production profile."""
    env = dict(
        os.environ,
        CAREBOT_DATABASE_URL=database_url,
        CAREBOT_VAR_DIR=str(var_dir),
        RASA_TELEMETRY_ENABLED="false",
    )
    command = [sys.executable, "-m", "bot.cli", "db-upgrade"]
    subprocess.run(command, cwd=PROJECT_DIR, env=env, check=True, timeout=600)
