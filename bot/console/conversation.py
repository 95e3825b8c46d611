"""What the console writes into a customer's conversation in Rasa: the agent's words, the pause
and resume around a handoff, and the handoff's closing intents.

An agent's reply is a `BotUttered` appended with `execute_side_effects=true` and the customer's
output channel, so Rasa sends it on web chat or WeChat and keeps it in the tracker; its metadata
(`handled_by: agent`) makes the CRM log it as the agent's turn (bot/interaction_log.py). The
calls go through the one client of Rasa's HTTP API (bot/rasa_api.py), in a worker thread so the
console's event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from bot.rasa_api import RasaApi


class Rasa(Protocol):
    async def append(
        self, sender: str, events: list[dict[str, Any]], channel: str | None
    ) -> None: ...

    async def trigger(self, sender: str, intent: str, channel: str | None) -> None: ...

    async def events(self, sender: str) -> list[dict[str, Any]]: ...


def agent_message(text: str, agent_id: int, agent_name: str) -> dict[str, Any]:
    """A BotUttered event that the transcript and the CRM attribute to the agent."""
    metadata = {"handled_by": "agent", "agent_id": agent_id, "agent_name": agent_name}
    return {"event": "bot", "text": text, "metadata": metadata}


PAUSE: dict[str, Any] = {"event": "pause"}
# An action that pauses the conversation ends the turn without `action_listen`, and a paused
# conversation predicts none either; rules match an intent only after `action_listen`, so the
# resume appends one before the console triggers EXTERNAL_handoff_closed or _timeout.
RESUME: list[dict[str, Any]] = [{"event": "resume"}, {"event": "action", "name": "action_listen"}]


class RasaConversations:
    """`Rasa` on the running server: bot/rasa_api.py's calls, awaited in a worker thread.
    Failures are bot.rasa_api.RasaError: the console shows them and changes nothing else."""

    def __init__(self, api: RasaApi) -> None:
        self.api = api

    async def append(self, sender: str, events: list[dict[str, Any]], channel: str | None) -> None:
        await asyncio.to_thread(
            self.api.append_events,
            sender,
            events,
            output_channel=channel,
            execute_side_effects=True,
        )

    async def trigger(self, sender: str, intent: str, channel: str | None) -> None:
        await asyncio.to_thread(self.api.trigger_intent, sender, intent, output_channel=channel)

    async def events(self, sender: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.api.events, sender)
