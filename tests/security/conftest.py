"""The production profile (`carebot run` without `--demo`): PostgreSQL for the CRM, Redis, the
REST channel with its credential, one allowed web origin. Started once for tests/security."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.future import create_engine

from tests.bot.test_log_consumer import AMQP_URL, rabbitmq_is_up
from tests.conftest import reachable_redis, running_system
from tests.integration.system import System

PG_ADMIN_URL = os.environ.get(
    "CAREBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
SHOP_ORIGIN = "https://shop.example.com"


@pytest.fixture(scope="session")
def postgres_crm_url() -> Iterator[str]:
    """A throwaway PostgreSQL database (under CI=true PostgreSQL must be there)."""
    yield from throwaway_postgres("carebot_prod")


@pytest.fixture(scope="session")
def postgres_tracker_url() -> Iterator[str]:
    """Rasa's conversation store in a PostgreSQL database of its own."""
    yield from throwaway_postgres("carebot_tracker")


def throwaway_postgres(prefix: str) -> Iterator[str]:
    admin = create_engine(PG_ADMIN_URL, future=True, isolation_level="AUTOCOMMIT")
    try:
        admin.connect().close()
    except OperationalError as error:
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but PostgreSQL is unreachable: {error.orig}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}")
    name = f"{prefix}_{secrets.token_hex(6)}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


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
    yield from running_system(var_dir, env, demo=False, redis_url=redis_url)
