"""Rasa's pika event broker, with the events it could not publish retried until they are.

Rasa's own `PikaEventBroker` keeps an event whose publication failed and publishes the kept
ones again once, at the moment the connection to RabbitMQ comes back. The channel is not
always ready at that moment, and events that fail after it wait for a reconnection that never
comes: with RabbitMQ out of reach for 10 s under load, tests/cluster found a few hundred turns
that never reached the CRM. This broker retries the kept events in order every second until
RabbitMQ takes them (publisher confirms say it did). An event published twice is harmless: the
log consumer writes each turn once (its event key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from rasa.core.brokers.pika import PikaEventBroker

logger = logging.getLogger(__name__)

RETRY_EVERY_S = 1.0


class CarePikaEventBroker(PikaEventBroker):
    """`type: bot.event_broker.CarePikaEventBroker` in endpoints.yml (bot/runtime.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._retrying: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        await super().connect()
        self._retrying = asyncio.get_running_loop().create_task(self._retry_kept_events())

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
                await self._exchange.publish(self._message(event, None), "")
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
