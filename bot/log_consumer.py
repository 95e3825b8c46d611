"""`carebot log-consumer`: the interaction log as its own process, fed by RabbitMQ.

In the production profile (docs/deploy.md) every Rasa replica publishes its tracker events
through Rasa's own pika broker to one durable queue; this process reads them, turns them into
the CRM's interaction rows (`bot.interaction_log.TurnReader`) and writes a batch in one
transaction. A message is acknowledged only after its batch is committed, so a crash, a
restart of RabbitMQ or of this process, or a database outage loses nothing: unacknowledged
messages come back, and each turn's event key makes the second write a no-op. While the
database is down the batch is retried with backoff and nothing is acknowledged. Run one
consumer per queue: the reader remembers per conversation what later events need (the channel,
whether a person has it), and one consumer keeps each conversation's events in order.

With a tracker store in a SQL database (CAREBOT_TRACKER_URL) it also reconciles the log from
it every CAREBOT_CONSUMER_RECONCILE_EVERY seconds (bot/reconcile.py): the tracker store is the
source of truth, and a turn a Rasa replica stored and answered but never published (it was
killed) is written all the same. That runs whether RabbitMQ is reachable or not.

With CAREBOT_CONSUMER_HEALTH_PORT set it serves /health, /ready (the CRM database answers and
RabbitMQ is connected) and /metrics (bot/health.py, bot/metrics.py): messages and turns
written, the queue's depth and the lag of the last batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from sqlalchemy.engine import Engine

from bot import metrics
from bot.health import HealthServer, database_check
from bot.interaction_log import InteractionRow, TurnReader, is_transient, write_turns
from bot.reconcile import ReconcileConfig, Reconciler
from crm_store.db import make_engine

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerConfig:
    amqp_url: str
    database_url: str
    queue: str = "carebot_turns"
    exchange: str = "carebot-events"
    batch: int = 200
    idle_wait_s: float = 0.2
    first_retry_s: float = 0.5
    max_retry_s: float = 30.0
    depth_every_s: float = 5.0  # how often the queue's depth is read for the metrics
    health_host: str = "127.0.0.1"
    health_port: int | None = None  # None: no health endpoint
    reconcile: ReconcileConfig | None = None  # None: the broker's messages only


@dataclass
class ConsumerStats:
    messages: int = 0
    turns: int = 0
    malformed: int = 0
    reconciled: int = 0  # turns written from the tracker store that the broker had not delivered


def decode(message: AbstractIncomingMessage) -> dict[str, Any] | None:
    """The Rasa event a message carries; None for anything else."""
    try:
        event = json.loads(message.body)
    except (ValueError, UnicodeDecodeError):
        return None
    return event if isinstance(event, dict) else None


class LogConsumer:
    """Reads batches from the queue, writes them to the CRM, acknowledges after the commit."""

    def __init__(self, config: ConsumerConfig, engine: Engine | None = None) -> None:
        self.config = config
        self.engine = engine  # made on the first write: the database may be down at start
        self.reader = TurnReader()
        self.stats = ConsumerStats()
        self.stopping = asyncio.Event()
        self.connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._depth_read_at = 0.0

    def broker_connected(self) -> bool:
        """RabbitMQ is connected now (read by the health endpoint's thread)."""
        connection = self.connection
        return connection is not None and not connection.is_closed and connection.connected.is_set()

    async def run(self) -> None:
        reconciling = self.start_reconciling()
        try:
            await self.consume()
        finally:
            if reconciling is not None:
                self.stopping.set()
                await reconciling

    def start_reconciling(self) -> asyncio.Task[None] | None:
        if self.config.reconcile is None:
            return None
        reconciler = Reconciler(self.config.reconcile)
        return asyncio.get_running_loop().create_task(self.reconcile_every(reconciler))

    async def reconcile_every(self, reconciler: Reconciler) -> None:
        """A reconciliation pass now and every `every_s` until stopping; a database out of
        reach only delays the next pass."""
        assert self.config.reconcile is not None
        try:
            while not self.stopping.is_set():
                try:
                    done = await asyncio.to_thread(reconciler.reconcile_once)
                except Exception as error:
                    if not is_transient(error):
                        logger.exception("log consumer: reconciliation failed")
                    else:
                        logger.warning("log consumer: reconciliation postponed: %s", error)
                else:
                    self.stats.reconciled += done.written
                    metrics.CONSUMER_RECONCILED.inc(done.written)
                await self.pause(self.config.reconcile.every_s)
        finally:
            reconciler.close()

    async def consume(self) -> None:
        connection = await aio_pika.connect_robust(self.config.amqp_url)
        self.connection = connection
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=self.config.batch)
            queue = await self.declare(channel)
            logger.info("log consumer: reading %s", self.config.queue)
            while not self.stopping.is_set():
                batch = await self.next_batch(queue)
                if batch:
                    await self.handle(batch)
                else:
                    metrics.CONSUMER_LAG_SECONDS.set(0)
                    await self.pause(self.config.idle_wait_s)
                await self.read_depth(channel)
        finally:
            self.connection = None
            await connection.close()

    async def read_depth(self, channel: aio_pika.abc.AbstractChannel) -> None:
        """The queue's depth for the metrics, at most every `depth_every_s` (one round trip)."""
        if time.monotonic() - self._depth_read_at < self.config.depth_every_s:
            return
        self._depth_read_at = time.monotonic()
        try:
            queue = await channel.declare_queue(self.config.queue, passive=True)
        except Exception as error:  # RabbitMQ restarting: the next read tells
            logger.debug("log consumer: queue depth not read (%s)", error)
            return
        count = queue.declaration_result.message_count
        if count is not None:
            metrics.CONSUMER_QUEUE_DEPTH.set(count)

    async def declare(self, channel: aio_pika.abc.AbstractChannel) -> AbstractQueue:
        """The same exchange and durable queue Rasa's pika broker declares (either may start
        first)."""
        exchange = await channel.declare_exchange(
            self.config.exchange, type=aio_pika.ExchangeType.FANOUT
        )
        queue = await channel.declare_queue(self.config.queue, durable=True)
        await queue.bind(exchange, "")
        return queue

    async def next_batch(self, queue: AbstractQueue) -> list[AbstractIncomingMessage]:
        batch: list[AbstractIncomingMessage] = []
        while len(batch) < self.config.batch and not self.stopping.is_set():
            try:
                message = await queue.get(no_ack=False, fail=False)
            except aio_pika.exceptions.AMQPError as error:  # RabbitMQ restarting: try again
                logger.warning("log consumer: RabbitMQ unavailable (%s); retrying", error)
                await self.pause(1.0)
                break
            if message is None:
                break
            batch.append(message)
        return batch

    async def handle(self, batch: list[AbstractIncomingMessage]) -> None:
        turns: list[InteractionRow] = []
        oldest: float | None = None
        for message in batch:
            event = decode(message)
            if event is None:
                self.stats.malformed += 1
                metrics.CONSUMER_MALFORMED.inc()
                logger.warning("log consumer: a message that is no Rasa event was dropped")
                continue
            oldest = _earlier(oldest, event.get("timestamp"))
            turn = self.reader.read(event)
            if turn is not None:
                turns.append(turn)
        if not await self.write_until_done(turns):
            return  # stopping with the database down: the batch stays unacknowledged
        for message in batch:
            await self.acknowledge(message)
        self.stats.messages += len(batch)
        self.stats.turns += len(turns)
        metrics.CONSUMER_MESSAGES.inc(len(batch))
        metrics.CONSUMER_TURNS.inc(len(turns))
        metrics.CONSUMER_LAG_SECONDS.set(max(0.0, time.time() - oldest) if oldest else 0.0)

    async def write_until_done(self, turns: list[InteractionRow]) -> bool:
        delay, down = self.config.first_retry_s, False
        while not self.stopping.is_set():
            try:
                if turns:
                    await asyncio.to_thread(self.write, turns)
            except Exception as error:
                if not is_transient(error):
                    logger.exception("log consumer: dropped %d turns", len(turns))
                    return True
                if not down:
                    logger.error("log consumer: CRM database unavailable, retrying: %s", error)
                    down = True
                await self.pause(delay)
                delay = min(delay * 2, self.config.max_retry_s)
                continue
            if down:
                logger.info("log consumer: CRM database available again")
            return True
        return False

    def write(self, turns: list[InteractionRow]) -> None:
        if self.engine is None:
            self.engine = make_engine(self.config.database_url)
        write_turns(self.engine, turns)

    async def acknowledge(self, message: AbstractIncomingMessage) -> None:
        try:
            await message.ack()
        except Exception as error:  # the channel closed: RabbitMQ redelivers, the key dedupes
            logger.warning("log consumer: an acknowledgement was lost (%s)", error)

    async def pause(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)


def _earlier(oldest: float | None, timestamp: Any) -> float | None:
    """The earlier of `oldest` and an event's Rasa timestamp (unix seconds), if it has one."""
    if not isinstance(timestamp, (int, float)) or isinstance(timestamp, bool):
        return oldest
    return float(timestamp) if oldest is None else min(oldest, float(timestamp))


def serve_consumer_health(config: ConsumerConfig, consumer: LogConsumer) -> HealthServer | None:
    """Ready while the CRM database answers and RabbitMQ is connected."""
    if config.health_port is None:
        return None
    checks = {"database": database_check(config.database_url), "broker": consumer.broker_connected}
    return HealthServer(config.health_host, config.health_port, checks).start()


def run_consumer(config: ConsumerConfig) -> int:
    """Runs until SIGTERM or SIGINT; the batch being written is finished first."""

    async def main() -> None:
        consumer = LogConsumer(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, consumer.stopping.set)
        health = serve_consumer_health(config, consumer)
        try:
            await consumer.run()
        finally:
            if health is not None:
                health.stop()
        logger.info(
            "log consumer stopped: %d messages, %d turns",
            consumer.stats.messages,
            consumer.stats.turns,
        )

    asyncio.run(main())
    return 0
