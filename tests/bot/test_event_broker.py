"""bot/event_broker.py against the machine's RabbitMQ, reached through a TCP proxy the test
cuts (the broker itself is never touched): what is in flight or published while RabbitMQ is out
of reach is kept and published once it is back, and the log consumer writes every turn once.
Rasa's own PikaEventBroker loses about half of this burst (its in-flight publications never
finish)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from rasa.utils.endpoints import EndpointConfig

from bot.event_broker import CarePikaEventBroker
from bot.log_consumer import LogConsumer
from bot.runtime import PIKA_BROKER, event_broker_endpoint
from bot.settings import load_settings
from tests.bot.test_interaction_log import turns
from tests.bot.test_log_consumer import (  # noqa: F401 (fixtures)
    config,
    consume_until,
    db_url,
    events,
    names,
)
from tests.cluster.services import TcpProxy, free_port_on


def test_events_published_while_rabbitmq_is_out_of_reach_arrive_once_it_is_back(
    names: tuple[str, str],  # noqa: F811
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    queue, exchange = names
    proxy = TcpProxy(("127.0.0.1", free_port_on("127.0.0.1")), ("127.0.0.1", 5672))
    proxy.start()
    settings = load_settings(
        {
            "CAREBOT_VAR_DIR": str(tmp_path),
            "CAREBOT_EVENT_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{proxy.listen[1]}/",
            "CAREBOT_EVENT_QUEUE": queue,
            "CAREBOT_EVENT_EXCHANGE": exchange,
        }
    )
    endpoint = event_broker_endpoint(settings)
    assert endpoint["type"] == PIKA_BROKER
    sender = f"rest:{uuid.uuid4().hex[:8]}"
    bodies = [json.loads(body) for body in events(sender, 300)]

    async def scenario() -> int:
        broker = await CarePikaEventBroker.from_endpoint_config(EndpointConfig(**endpoint))
        assert broker is not None
        for n, body in enumerate(bodies):  # a burst, as a busy Rasa server publishes
            broker.publish(body)
            if n == len(bodies) // 2:  # RabbitMQ goes away with publications in flight
                await asyncio.sleep(0)
                await asyncio.to_thread(proxy.cut)
            if n % 50 == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(2)
        kept = len(broker._unpublished_events)
        await asyncio.to_thread(proxy.restore)
        for _ in range(150):  # aio-pika reconnects after 5 s; then the kept events go out
            await asyncio.sleep(0.2)
            if not broker._unpublished_events and not broker._background_tasks:
                break
        await broker.close()
        consumer = LogConsumer(config(names, db_url))
        # until every turn is in the CRM: a message confirmed just as the link broke may have
        # been published again, so the queue can hold more messages than there are turns
        await consume_until(
            consumer, lambda: len(turns(db_url, sender)) >= 2 * len(bodies), timeout_s=40
        )
        return kept

    try:
        kept = asyncio.run(scenario())
    finally:
        proxy.close()
    assert kept > 0  # the cut did catch publications
    expected = [text for i in range(300) for text in (f"问题{i}", f"回答{i}")]
    assert [turn.text for turn in turns(db_url, sender)] == expected
