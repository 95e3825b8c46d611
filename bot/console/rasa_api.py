"""The console's side of Rasa's HTTP API: append events and trigger intents in a conversation.

An agent's reply is a `BotUttered` appended with `execute_side_effects=true` and the customer's
output channel, so Rasa sends it on web chat or WeChat and keeps it in the tracker; its metadata
(`handled_by: agent`) makes the CRM log it as the agent's turn (bot/interaction_log.py).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

import aiohttp

TIMEOUT_S = 15.0


class RasaError(Exception):
    """Rasa refused or did not answer; the console shows it and changes nothing else."""


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


class RasaApi:
    """Rasa's HTTP API with the server's token (`--auth-token`)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def _url(self, sender: str, tail: str) -> str:
        # Rasa's route does not percent-decode: a REST conversation (rest:x) keeps its colon
        return f"{self.base_url}/conversations/{quote(sender, safe=':')}/{tail}"

    def _params(self, channel: str | None, **extra: str) -> dict[str, str]:
        params = {"token": self.token, **extra}
        if channel:
            params["output_channel"] = channel
        return params

    async def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.request(method, url, **kwargs) as response,
            ):
                if response.status >= 300:
                    raise RasaError(f"Rasa answered {response.status}: {await response.text()}")
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as error:
            raise RasaError(f"Rasa is unreachable: {error}") from error

    async def append(self, sender: str, events: list[dict[str, Any]], channel: str | None) -> None:
        params = self._params(channel, execute_side_effects="true")
        await self._request("POST", self._url(sender, "tracker/events"), params=params, json=events)

    async def trigger(self, sender: str, intent: str, channel: str | None) -> None:
        url = self._url(sender, "trigger_intent")
        await self._request("POST", url, params=self._params(channel), json={"name": intent})

    async def events(self, sender: str) -> list[dict[str, Any]]:
        params = {"token": self.token, "include_events": "ALL"}
        tracker = await self._request("GET", self._url(sender, "tracker"), params=params)
        return list(tracker.get("events") or [])
