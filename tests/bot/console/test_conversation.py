"""What the console writes into a conversation, through bot/rasa_api.py, against a recording
stand-in for Rasa's routes (the client's own URL rules: tests/bot/test_rasa_api.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.console.conversation import RESUME, RasaConversations, agent_message
from bot.rasa_api import RasaApi, RasaError
from tests.integration.system import free_port


def conversations(url: str, token: str) -> RasaConversations:
    return RasaConversations(RasaApi(url, token))


@pytest.fixture
async def rasa() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        path = request.raw_path.split("?")[0]
        seen.append({"path": path, "query": dict(request.query), "body": body})
        if path.startswith("/conversations/broken/"):
            return web.Response(status=500, text="boom")
        return web.json_response({"events": [{"event": "user", "text": "你好"}]})

    app = web.Application()
    app.router.add_route("*", "/conversations/{tail:.*}", record)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), seen
    await server.close()


async def test_events_go_with_side_effects_to_the_customers_channel(rasa: Any) -> None:
    url, seen = rasa
    api = conversations(url, "secret-token")
    await api.append("o_abc/1", [agent_message("您好", 3, "小张")], "wechat")
    await api.trigger("o_abc/1", "EXTERNAL_handoff_closed", "wechat")
    assert await api.events("web-1") == [{"event": "user", "text": "你好"}]
    append, trigger, tracker = seen
    # the id as it is: Rasa does not decode, so `o_abc%2F1` would be another conversation
    assert append["path"] == "/conversations/o_abc/1/tracker/events"
    assert append["query"] == {
        "token": "secret-token",
        "execute_side_effects": "true",
        "output_channel": "wechat",
    }
    assert append["body"] == [
        {
            "event": "bot",
            "text": "您好",
            "metadata": {"handled_by": "agent", "agent_id": 3, "agent_name": "小张"},
        }
    ]
    assert trigger["body"] == {"name": "EXTERNAL_handoff_closed"}
    assert trigger["query"]["output_channel"] == "wechat"
    assert tracker["query"] == {"token": "secret-token", "include_events": "ALL"}
    assert RESUME[0] == {"event": "resume"} and RESUME[1]["name"] == "action_listen"


async def test_refusals_and_silence_are_rasa_errors(rasa: Any) -> None:
    url, _ = rasa
    with pytest.raises(RasaError, match="500"):
        await conversations(url, "t").append("broken", [], None)
    with pytest.raises(RasaError, match="unreachable"):
        await conversations(f"http://127.0.0.1:{free_port()}", "t").events("web-1")


async def test_a_rest_conversation_keeps_its_colon(rasa: Any) -> None:
    """Rasa's conversation route does not percent-decode: `rest%3Au1` would be another one."""
    url, seen = rasa
    await conversations(url, "secret-token").events("rest:u1")
    assert seen[-1]["path"] == "/conversations/rest:u1/tracker"
