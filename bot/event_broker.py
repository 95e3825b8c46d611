"""Rasa's pika event broker, with every event it could not publish retried until it is.

Rasa's own `PikaEventBroker` publishes each event from a background task that waits for
RabbitMQ's confirmation. When the connection drops, the publications in flight never finish:
neither confirmed nor failed, so neither delivered nor kept for later, and the events are lost.
Those that do fail are kept, and published again once, when the connection comes back; what
fails after that moment waits for a reconnection that may never come. With RabbitMQ out of reach
for 10 s under load, tests/cluster found two thirds of the turns of 200 conversations missing
from the CRM (tests/bot/test_event_broker.py shows it without a cluster).

This broker gives each publication `PUBLISH_TIMEOUT_S` to be confirmed and keeps the event
otherwise, and retries the kept events in order every second until RabbitMQ takes them. An event
published twice (confirmed late) is harmless: the log consumer writes each turn once (its event
key). It also logs a failure without the event, which carries the customer's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from rasa.core.brokers.pika import PikaEventBroker

logger = logging.getLogger(__name__)

RETRY_EVERY_S = 1.0
PUBLISH_TIMEOUT_S = 10.0


class CarePikaEventBroker(PikaEventBroker):
    """`type: bot.event_broker.CarePikaEventBroker` in endpoints.yml (bot/runtime.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._retrying: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await super().connect()
        self._retrying = asyncio.get_running_loop().create_task(self._retry_kept_events())

    async def _publish(self, event: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        if self._exchange is None:
            return
        try:
            await self._confirmed(self._message(event, headers))
        except Exception as error:  # out of reach, or no confirmation in time: keep it
            if not self._unpublished_events:
                logger.warning("RabbitMQ did not take an event (%r); keeping events", error)
            self._unpublished_events.append(event)

    async def _confirmed(self, message: Any) -> None:
        assert self._exchange is not None
        await asyncio.wait_for(self._exchange.publish(message, ""), PUBLISH_TIMEOUT_S)

    def _publish_unpublished_messages(self, *_: Any, **__: Any) -> None:
        """Rasa's one-shot republication on reconnection: the retry loop does it instead."""

    async def _retry_kept_events(self) -> None:
        while True:
            await asyncio.sleep(RETRY_EVERY_S)
            if self._unpublished_events:
                await self.publish_kept_events()

    async def publish_kept_events(self) -> int:
        """Publishes the kept events in order until one fails (kept again, first in line);
        returns how many went out."""
        published = 0
        while self._unpublished_events and self._exchange is not None:
            event = self._unpublished_events.popleft()
            try:
                await self._confirmed(self._message(event, None))
            except Exception:  # RabbitMQ still out of reach: try again later
                self._unpublished_events.appendleft(event)
                break
            published += 1
        if published:
            logger.info(
                "published %d kept events; %d still kept", published, len(self._unpublished_events)
            )
        return published

    async def close(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retrying
            self._retrying = None
        await super().close()
