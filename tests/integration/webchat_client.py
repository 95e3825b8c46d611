"""A web chat customer as the widget behaves: a real socket.io client speaking the protocol."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import socketio


def unwrapped(message: dict[str, Any]) -> dict[str, Any]:
    """A wire message with our fields (id, sender, time) lifted out of its `metadata`, where
    the channel puts them so that rasa-webchat renders the rest."""
    return {**{k: v for k, v in message.items() if k != "metadata"}, **message["metadata"]}


class WebChatCustomer:
    """Connects, asks for a session, collects history and bot messages, acknowledges them."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        ack: bool = True,
        transports: list[str] | None = None,
        http_session: aiohttp.ClientSession | None = None,
        request_timeout: float = 5,
    ) -> None:
        """`transports` (default: long polling, then a websocket), `http_session` (its own
        cookies, as a browser has) and `request_timeout` (engine.io's handshake; a browser's
        socket.io waits 20 s) are socket.io's; tests/cluster pins polling to a replica."""
        self.url, self.token, self.ack, self.transports = url, token, ack, transports
        self.client = socketio.AsyncClient(
            reconnection=False, http_session=http_session, request_timeout=request_timeout
        )
        self.session_id: str | None = None
        self.history: list[dict[str, Any]] = []
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.errors: list[Any] = []
        self._confirmed = asyncio.Event()
        self._history_seen = asyncio.Event()
        self.client.on("session_confirm", self._on_confirm)
        self.client.on("history", self._on_history)
        self.client.on("bot_uttered", self._on_bot)
        self.client.on("error_message", self.errors.append)

    async def _on_confirm(self, session_id: str) -> None:
        self.session_id = session_id
        self._confirmed.set()

    async def _on_history(self, data: dict[str, Any]) -> None:
        self.history = [unwrapped(message) for message in data["messages"]]
        self._history_seen.set()

    async def _on_bot(self, wire: dict[str, Any]) -> None:
        data = unwrapped(wire)
        await self.received.put(data)
        if self.ack and isinstance(data.get("message_id"), int):
            await self.client.emit(
                "bot_ack", {"session_id": self.session_id, "message_id": data["message_id"]}
            )

    async def open(self, session_id: str | None = None, wait_s: float = 10) -> WebChatCustomer:
        """Connects and joins the session; each step waits at most `wait_s` (a loaded cluster
        answers late)."""
        auth = {"token": self.token} if self.token else None
        await self.client.connect(
            self.url,
            socketio_path="/socket.io",
            auth=auth,
            wait_timeout=wait_s,
            transports=self.transports,
        )
        await self.client.emit("session_request", {"session_id": session_id})
        await asyncio.wait_for(self._confirmed.wait(), wait_s)
        await asyncio.wait_for(self._history_seen.wait(), wait_s)
        return self

    async def say(self, text: str) -> None:
        await self.client.emit("user_uttered", {"message": text, "session_id": self.session_id})

    async def next_message(self, timeout: float = 30) -> dict[str, Any]:
        return await asyncio.wait_for(self.received.get(), timeout)

    async def messages_until_quiet(self, quiet: float = 1.5, first: float = 30) -> list[Any]:
        """Every bot message until none has come for `quiet` seconds (the first may take long)."""
        found = [await self.next_message(first)]
        while True:
            try:
                found.append(await self.next_message(quiet))
            except asyncio.TimeoutError:
                return found

    async def close(self) -> None:
        await self.client.disconnect()
