"""What a console action does, in the CRM and in Rasa, in that order.

The CRM decides (one conditional UPDATE: two agents claiming at once, one wins), then Rasa is
told (pause, the agent's words, resume and the close intent). The CRM is synchronous, so its
work runs in a worker thread; the Rasa calls are awaited on the server's loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.console.conversation import PAUSE, RESUME, Rasa, agent_message
from bot.console.texts import AGENT_JOINED, AGENT_TRANSFERRED, response_text
from bot.rasa_api import RasaError
from crm_store.clock import Clock, utcnow
from crm_store.db import session_scope
from crm_store.errors import InvalidInput
from crm_store.handoff_queue import (
    claim_handoff,
    close_by_agent,
    list_due_timeouts,
    mark_timeout_notified,
    start_agent_handoff,
    take_over_handoff,
    transfer_handoff,
)
from crm_store.handoffs import Handoff, Route, get_handoff
from crm_store.interactions import conversation_id_for, get_conversation
from crm_store.staff import get_staff_user

log = logging.getLogger(__name__)
T = TypeVar("T")
CLOSED_INTENT = "EXTERNAL_handoff_closed"
TIMEOUT_INTENT = "EXTERNAL_handoff_timeout"
MAX_REPLY = 2000
CHANNEL_BY_CRM = {"web": "webchat", "wechat": "wechat"}


@dataclass(frozen=True)
class Agent:
    """The logged-in staff member acting."""

    id: int
    name: str
    role: str

    @property
    def supervises(self) -> bool:
        return self.role in ("supervisor", "admin")


@dataclass
class Desk:
    engine: Engine
    rasa: Rasa
    domain_path: Path
    clock: Clock = utcnow

    async def db(self, work: Callable[[Session], T]) -> T:
        """One CRM transaction in a worker thread."""

        def run() -> T:
            with session_scope(self.engine) as session:
                return work(session)

        return await asyncio.to_thread(run)

    def text(self, response: str, **values: Any) -> str:
        return response_text(self.domain_path, response, **values)

    async def claim(self, handoff_id: int, agent: Agent) -> Handoff:
        handoff = await self.db(
            lambda s: claim_handoff(s, handoff_id=handoff_id, agent_id=agent.id, clock=self.clock)
        )
        await self.greet(handoff, agent, AGENT_JOINED)
        return handoff

    async def greet(self, handoff: Handoff, agent: Agent, response: str) -> None:
        """Pause the bot (again: harmless) and introduce the agent to the customer."""
        greeting = agent_message(self.text(response, agent=agent.name), agent.id, agent.name)
        await self.send(handoff, [PAUSE, greeting])

    async def send(self, handoff: Handoff, events: list[dict[str, Any]]) -> None:
        if handoff.sender_id is None:
            raise RasaError(f"handoff {handoff.id} has no conversation to write to")
        await self.rasa.append(handoff.sender_id, events, handoff.output_channel)

    async def reply(self, handoff: Handoff, agent: Agent, text: str) -> None:
        text = text.strip()
        if not text or len(text) > MAX_REPLY:
            raise InvalidInput(f"a reply needs 1 to {MAX_REPLY} characters")
        await self.send(handoff, [agent_message(text, agent.id, agent.name)])

    async def close(self, handoff_id: int, agent: Agent, outcome: str) -> Handoff:
        """Close in the CRM, then hand the conversation back to the bot (it offers the survey)."""
        handoff = await self.db(
            lambda s: close_by_agent(
                s,
                handoff_id=handoff_id,
                outcome=outcome,
                agent_id=agent.id,
                any_agent=agent.supervises,
                clock=self.clock,
            )
        )
        await self.resume(handoff, CLOSED_INTENT)
        return handoff

    async def resume(self, handoff: Handoff, intent: str) -> None:
        if handoff.sender_id is None:
            return
        await self.rasa.append(handoff.sender_id, RESUME, handoff.output_channel)
        await self.rasa.trigger(handoff.sender_id, intent, handoff.output_channel)

    async def transfer(self, handoff_id: int, agent: Agent, to_agent_id: int) -> Handoff:
        def work(session: Session) -> tuple[Handoff, str]:
            handoff = transfer_handoff(
                session,
                handoff_id=handoff_id,
                from_agent_id=None if agent.supervises else agent.id,
                to_agent_id=to_agent_id,
                actor_id=agent.id,
                clock=self.clock,
            )
            return handoff, get_staff_user(session, staff_id=to_agent_id).display_name

        handoff, name = await self.db(work)
        await self.greet(handoff, Agent(to_agent_id, name, "agent"), AGENT_TRANSFERRED)
        return handoff

    async def take_over(self, handoff_id: int, supervisor: Agent) -> Handoff:
        before = await self.db(lambda s: get_handoff(s, handoff_id=handoff_id))
        handoff = await self.db(
            lambda s: take_over_handoff(
                s, handoff_id=handoff_id, supervisor_id=supervisor.id, clock=self.clock
            )
        )
        response = AGENT_JOINED if before.state == "waiting" else AGENT_TRANSFERRED
        await self.greet(handoff, supervisor, response)
        return handoff

    async def pick(self, conversation_id: str, agent: Agent) -> Handoff:
        """An agent takes a conversation from the live list: a handoff that is theirs at once."""

        def work(session: Session) -> Handoff:
            conversation = get_conversation(session, conversation_id=conversation_id)
            if conversation_id_for(conversation_id) != conversation_id:
                raise InvalidInput("this conversation's sender id is not known")
            route = Route(0, conversation_id, CHANNEL_BY_CRM.get(conversation.channel))
            return start_agent_handoff(
                session,
                conversation_id=conversation_id,
                channel=conversation.channel,
                route=route,
                agent_id=agent.id,
                customer_id=conversation.customer_id,
                clock=self.clock,
            )

        handoff = await self.db(work)
        await self.greet(handoff, agent, AGENT_JOINED)
        return handoff

    def mark_told(self, handoff_id: int, session: Session) -> bool:
        return mark_timeout_notified(session, handoff_id=handoff_id, clock=self.clock)

    async def tell_timeouts(self, wait: timedelta) -> int:
        """Tell each customer nobody picked up in time (once); returns how many were told."""
        due = await self.db(lambda s: list_due_timeouts(s, wait=wait, clock=self.clock))
        told = 0
        for handoff in due:
            told += await self.tell_timeout(handoff)
        return told

    async def tell_timeout(self, handoff: Handoff) -> bool:
        """Resume the bot and let it offer the choices, unless someone else already did or an
        agent claimed the handoff meanwhile."""
        if not await self.db(partial(self.mark_told, handoff.id)):
            return False
        try:
            await self.resume(handoff, TIMEOUT_INTENT)
        except RasaError as error:
            log.warning("handoff %s: could not tell the customer: %s", handoff.id, error)
            return False
        return True
