"""The channel's side of crm_store.webchat: each call a short transaction in a worker thread, so
the Sanic event loop never waits on the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from crm_store import webchat
from crm_store.clock import Clock, utcnow
from crm_store.db import make_engine, session_scope
from crm_store.identities import find_customer_by_identity
from crm_store.webchat import WebChatMessage

T = TypeVar("T")


class Mailbox:
    def __init__(self, database_url: str, clock: Clock = utcnow) -> None:
        self.engine = make_engine(database_url)
        self.clock = clock

    async def _run(self, work: Callable[[Session], T]) -> T:
        def in_transaction() -> T:
            with session_scope(self.engine) as session:
                return work(session)

        return await asyncio.to_thread(in_transaction)

    async def store(self, session_id: str, sender: str, payload: dict[str, Any]) -> WebChatMessage:
        return await self._run(
            lambda s: webchat.store_message(
                s, session_id=session_id, sender=sender, payload=payload, clock=self.clock
            )
        )

    async def history(self, session_id: str) -> list[WebChatMessage]:
        return await self._run(lambda s: webchat.history(s, session_id=session_id))

    async def last_bot_payload(self, session_id: str) -> dict[str, Any] | None:
        shown = await self._run(lambda s: webchat.history(s, session_id=session_id, limit=5))
        bots = [message.payload for message in shown if message.sender == "bot"]
        return bots[-1] if bots else None

    async def acknowledge(self, session_id: str, up_to_id: int) -> int:
        return await self._run(
            lambda s: webchat.acknowledge(
                s, session_id=session_id, up_to_id=up_to_id, clock=self.clock
            )
        )

    async def renew_presence(self, session_ids: Iterable[str], lease: timedelta) -> None:
        ids = list(session_ids)
        await self._run(
            lambda s: webchat.renew_presence(s, session_ids=ids, lease=lease, clock=self.clock)
        )

    async def end_presence(self, session_id: str) -> None:
        await self._run(lambda s: webchat.end_presence(s, session_id=session_id))

    async def web_user_name(self, user_id: str) -> str | None:
        """The name of the customer whose website login is `user_id`, if there is one."""

        def name(session: Session) -> str | None:
            customer = find_customer_by_identity(session, kind="web_user", value=user_id)
            return None if customer is None else customer.name

        return await self._run(name)
