"""The one client of Rasa's HTTP API (bot/rasa_api.py) against a recording stand-in for Rasa's
conversation routes: the exact paths and queries it sends, and its errors. The real server's
reading of those paths: tests/integration/test_personal_data.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.rasa_api import (
    RasaApi,
    RasaError,
    RasaRefused,
    RasaUnreachable,
    Unaddressable,
    addressable,
    conversation_url,
)
from tests.integration.system import free_port

Seen = list[dict[str, Any]]


@pytest.fixture
async def rasa() -> AsyncIterator[tuple[str, Seen]]:
    """Records each request's method, raw path, query and JSON body; a path with `broken`
    answers 500, one with `garbled` answers a body that is not JSON."""
    seen: Seen = []

    async def record(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        path = request.raw_path.split("?")[0]
        seen.append({"method": request.method, "path": path, "query": dict(request.query)})
        seen[-1]["body"] = body
        if "broken" in path:
            return web.Response(status=500, text="boom " * 100)
        if "garbled" in path:
            return web.Response(text="<html>")
        return web.json_response({"events": [{"event": "user", "text": "你好"}]})

    app = web.Application()
    app.router.add_route("*", "/conversations/{tail:.*}", record)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), seen
    await server.close()


def test_ids_go_into_the_path_as_they_are() -> None:
    """Rasa does not percent-decode: `rest%3Au1` or `o_abc%2F1` would be other conversations."""
    base = "http://rasa:5005/"
    assert conversation_url(base, "rest:u1", "tracker", {}) == (
        "http://rasa:5005/conversations/rest:u1/tracker"
    )
    assert conversation_url(base, "o_abc/1", "tracker/events", {"token": "t k"}) == (
        "http://rasa:5005/conversations/o_abc/1/tracker/events?token=t+k"
    )
    for sender in ("o_6_-AbCd", "web-0123abcd", "rest:a@b.c", "rest:u(1)!$&'*+,;=~"):
        assert addressable(sender), sender


@pytest.mark.parametrize("sender", ["web user", "rest:a?b", "a#b", "a%2Fb", "王小明", "", "a\nb"])
def test_an_id_a_url_path_cannot_carry_is_refused_before_any_request(sender: str) -> None:
    assert not addressable(sender)
    with pytest.raises(Unaddressable, match="cannot name"):
        conversation_url("http://rasa", sender, "tracker", {})
    with pytest.raises(Unaddressable):  # before connecting (nothing listens there)
        RasaApi(f"http://127.0.0.1:{free_port()}", "t").tracker(sender)


async def test_each_call_sends_its_route_query_and_body(rasa: tuple[str, Seen]) -> None:
    url, seen = rasa
    api = RasaApi(url, "secret-token")
    event = {"event": "bot", "text": "您好"}
    await asyncio.to_thread(
        api.append_events, "o_abc/1", [event], output_channel="wechat", execute_side_effects=True
    )
    await asyncio.to_thread(api.append_events, "rest:u1", [event])
    await asyncio.to_thread(api.replace_events, "rest:u1", [])
    answer = await asyncio.to_thread(
        api.trigger_intent, "rest:u1", "EXTERNAL_care_message", {"care_message_id": 7}, "webchat"
    )
    await asyncio.to_thread(api.trigger_intent, "o_abc", "EXTERNAL_handoff_closed")
    events = await asyncio.to_thread(api.events, "web-1")

    assert answer == {"events": [{"event": "user", "text": "你好"}]}
    assert events == [{"event": "user", "text": "你好"}]
    token = {"token": "secret-token"}
    assert seen == [
        {
            "method": "POST",
            "path": "/conversations/o_abc/1/tracker/events",
            "query": {**token, "execute_side_effects": "true", "output_channel": "wechat"},
            "body": [event],
        },
        {
            "method": "POST",
            "path": "/conversations/rest:u1/tracker/events",
            "query": token,
            "body": [event],
        },
        {
            "method": "PUT",
            "path": "/conversations/rest:u1/tracker/events",
            "query": token,
            "body": [],
        },
        {
            "method": "POST",
            "path": "/conversations/rest:u1/trigger_intent",
            "query": {**token, "output_channel": "webchat"},
            "body": {"name": "EXTERNAL_care_message", "entities": {"care_message_id": 7}},
        },
        {
            "method": "POST",
            "path": "/conversations/o_abc/trigger_intent",
            "query": token,
            "body": {"name": "EXTERNAL_handoff_closed"},
        },
        {
            "method": "GET",
            "path": "/conversations/web-1/tracker",
            "query": {**token, "include_events": "ALL"},
            "body": None,
        },
    ]


async def test_refusals_silence_and_garble_are_rasa_errors(rasa: tuple[str, Seen]) -> None:
    url, _ = rasa
    api = RasaApi(url, "t")
    with pytest.raises(RasaRefused, match=r"^Rasa answered 500: boom") as refused:
        await asyncio.to_thread(api.replace_events, "broken", [])
    assert refused.value.status == 500 and len(str(refused.value)) < 330  # the detail is cut
    with pytest.raises(RasaError, match="not JSON"):
        await asyncio.to_thread(api.events, "garbled")
    with pytest.raises(RasaUnreachable, match="unreachable"):
        RasaApi(f"http://127.0.0.1:{free_port()}", "t").events("web-1")
