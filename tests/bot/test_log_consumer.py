"""`carebot log-consumer` against the machine's real RabbitMQ: what Rasa's own pika broker
publishes is written to the CRM once, acknowledged only after the commit, and nothing is lost
while the database is down or the consumer restarts."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
import rasa.shared.core.events  # noqa: F401 (Rasa's pika broker uses it without importing it)
from rasa.core.brokers.pika import PikaEventBroker
from rasa.utils.endpoints import EndpointConfig

from bot.log_consumer import ConsumerConfig, LogConsumer
from bot.runtime import INTERACTION_LOG, event_broker_endpoint
from bot.settings import load_settings
from tests.bot.test_interaction_log import bot_event, mount, turns, unmounted_volume, user_event

AMQP_URL = os.environ.get("CAREBOT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def rabbitmq_is_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but RabbitMQ is unreachable at 127.0.0.1:5672")
        return False


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    """A queue and an exchange of this test's own, deleted afterwards."""
    if not rabbitmq_is_up():
        pytest.skip("RabbitMQ is not running here (under CI=true it must be)")
    suffix = uuid.uuid4().hex[:10]
    queue, exchange = f"carebot_test_{suffix}", f"carebot-test-{suffix}"
    yield queue, exchange

    async def delete() -> None:
        connection = await aio_pika.connect_robust(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(queue)
            await channel.exchange_delete(exchange)

    asyncio.run(delete())


def config(names: tuple[str, str], database_url: str) -> ConsumerConfig:
    queue, exchange = names
    return ConsumerConfig(
        amqp_url=AMQP_URL,
        database_url=database_url,
        queue=queue,
        exchange=exchange,
        idle_wait_s=0.05,
        first_retry_s=0.05,
        max_retry_s=0.2,
    )


async def publish(names: tuple[str, str], bodies: list[bytes]) -> None:
    """As Rasa's pika broker does: persistent messages to a fanout exchange bound to the queue."""
    queue_name, exchange_name = names
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.FANOUT)
        queue = await channel.declare_queue(queue_name, durable=True)
        await queue.bind(exchange, "")
        for body in bodies:
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await exchange.publish(message, "")


async def waiting(names: tuple[str, str]) -> int:
    """Messages in the queue, acknowledged ones excluded."""
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(names[0], durable=True, passive=True)
        return int(queue.declaration_result.message_count or 0)


async def consume_until(consumer: LogConsumer, done: Any, timeout_s: float = 20.0) -> None:
    """Runs the consumer until `done()` holds (bounded in time), then stops it."""
    task = asyncio.create_task(consumer.run())
    try:
        for _ in range(int(timeout_s / 0.05)):
            if done():
                break
            await asyncio.sleep(0.05)
    finally:
        consumer.stopping.set()
        await asyncio.wait_for(task, timeout=10)


def events(sender: str, count: int) -> list[bytes]:
    bodies = []
    for i in range(count):
        bodies.append(
            json.dumps(user_event(sender, f"问题{i}", at=1_790_000_000.0 + 2 * i)).encode()
        )
        bodies.append(
            json.dumps(bot_event(sender, f"回答{i}", at=1_790_000_001.0 + 2 * i)).encode()
        )
    return bodies


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    from crm_store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade(url)
    return url


def test_every_turn_is_written_once_and_acknowledged(names: tuple[str, str], db_url: str) -> None:
    sender = f"rest:{uuid.uuid4().hex[:8]}"

    async def scenario() -> LogConsumer:
        await publish(names, events(sender, 5))
        consumer = LogConsumer(config(names, db_url))
        await consume_until(consumer, lambda: consumer.stats.messages == 10)
        return consumer

    consumer = asyncio.run(scenario())
    rows = turns(db_url, sender)
    assert [(t.speaker, t.text) for t in rows][:2] == [("customer", "问题0"), ("bot", "回答0")]
    assert len(rows) == 10 and consumer.stats.turns == 10
    assert asyncio.run(waiting(names)) == 0


def test_a_redelivered_batch_is_written_once(names: tuple[str, str], db_url: str) -> None:
    """RabbitMQ redelivers what was not acknowledged (a crash after the commit): no duplicate."""
    sender = f"rest:{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        for _ in range(2):
            await publish(names, events(sender, 3))
            consumer = LogConsumer(config(names, db_url))
            await consume_until(consumer, lambda c=consumer: c.stats.messages == 6)

    asyncio.run(scenario())
    assert len(turns(db_url, sender)) == 6


def test_nothing_is_acknowledged_while_the_database_is_down(
    names: tuple[str, str], tmp_path: Path
) -> None:
    volume, url = unmounted_volume(tmp_path)
    sender = f"rest:{uuid.uuid4().hex[:8]}"

    async def while_down() -> LogConsumer:
        await publish(names, events(sender, 2))
        consumer = LogConsumer(config(names, url))
        await consume_until(consumer, lambda: False, timeout_s=1.0)
        return consumer

    stopped = asyncio.run(while_down())
    assert stopped.stats.messages == 0
    assert asyncio.run(waiting(names)) == 4  # all back in the queue for the next consumer

    mount(volume, url)

    async def after() -> None:
        consumer = LogConsumer(config(names, url))
        await consume_until(consumer, lambda: consumer.stats.messages == 4)

    asyncio.run(after())
    assert len(turns(url, sender)) == 4


def test_a_message_that_is_no_event_is_dropped_and_the_rest_written(
    names: tuple[str, str], db_url: str
) -> None:
    sender = f"rest:{uuid.uuid4().hex[:8]}"

    async def scenario() -> LogConsumer:
        await publish(names, [b"\xff not json", b"[1, 2]", *events(sender, 1)])
        consumer = LogConsumer(config(names, db_url))
        await consume_until(consumer, lambda: consumer.stats.messages == 4)
        return consumer

    consumer = asyncio.run(scenario())
    assert consumer.stats.malformed == 2 and len(turns(db_url, sender)) == 2


def test_rasas_own_pika_broker_feeds_the_consumer(
    names: tuple[str, str], db_url: str, tmp_path: Path
) -> None:
    """The endpoints.yml `carebot run` writes for CAREBOT_EVENT_BROKER_URL, read by Rasa."""
    queue, exchange = names
    settings = load_settings(
        {
            "CAREBOT_VAR_DIR": str(tmp_path),
            "CAREBOT_EVENT_BROKER_URL": AMQP_URL,
            "CAREBOT_EVENT_QUEUE": queue,
            "CAREBOT_EVENT_EXCHANGE": exchange,
        }
    )
    endpoint = event_broker_endpoint(settings)
    sender = f"rest:{uuid.uuid4().hex[:8]}"

    async def scenario() -> None:
        broker = await PikaEventBroker.from_endpoint_config(EndpointConfig(**endpoint))
        assert broker is not None
        for body in events(sender, 2):
            broker.publish(json.loads(body))
        await asyncio.sleep(0.5)  # Rasa publishes on its event loop
        await broker.close()
        consumer = LogConsumer(config(names, db_url))
        await consume_until(consumer, lambda: consumer.stats.messages == 4)

    asyncio.run(scenario())
    assert [t.text for t in turns(db_url, sender)] == ["问题0", "回答0", "问题1", "回答1"]


def test_the_embedded_default_keeps_the_in_process_writer(tmp_path: Path) -> None:
    settings = load_settings({"CAREBOT_VAR_DIR": str(tmp_path)})
    endpoint = event_broker_endpoint(settings)
    assert endpoint == {"type": INTERACTION_LOG, "url": settings.database_url}
