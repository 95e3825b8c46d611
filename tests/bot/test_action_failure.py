from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.core.processor import MessageProcessor
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, SlotSet
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

from bot.action_failure import TIMEOUT_ENV, action_timeout, install

APOLOGY_TEXT = "Sorry, something went wrong."  # stands in for the domain's text
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture(autouse=True)
def _installed() -> None:
    install()


def a_domain() -> Domain:
    return Domain.from_dict(
        {
            "actions": ["action_check_order"],
            "slots": {"order_id": {"type": "text", "mappings": [{"type": "custom"}]}},
            "responses": {"utter_service_unavailable": [{"text": APOLOGY_TEXT}]},
        }
    )


async def run_action(name: str, url: str) -> tuple[list[Event], list[dict[str, Any]]]:
    """Runs the action as Rasa's processor does: run, then send the BotUttered events it got."""
    domain = a_domain()
    channel = CollectingOutputChannel()
    tracker = DialogueStateTracker.from_events("s", [SlotSet("order_id", "DD1")], domain.slots)
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    events = await RemoteAction(name, EndpointConfig(url)).run(channel, nlg, tracker, domain)
    await MessageProcessor._send_bot_messages(events, tracker, channel)
    return events, channel.messages


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/webhook"


@contextlib.asynccontextmanager
async def action_server(handler: Handler) -> AsyncIterator[str]:
    """A stand-in action server on a loopback port; yields its webhook URL."""
    app = web.Application()
    app.router.add_post("/webhook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock, shutdown_timeout=0.1).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/webhook"
    finally:
        await runner.cleanup()


def assert_apologised(events: list[Event], sent: list[dict[str, Any]]) -> None:
    assert len(events) == 1 and isinstance(events[0], BotUttered)
    assert events[0].text == APOLOGY_TEXT
    assert events[0].metadata["utter_action"] == "utter_service_unavailable"
    assert [(m["recipient_id"], m["text"]) for m in sent] == [("s", APOLOGY_TEXT)]


async def test_an_action_server_that_is_down_gets_an_apology(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events, sent = await run_action("action_check_order", closed_port_url())
    assert_apologised(events, sent)
    errors = [r.getMessage() for r in caplog.records if r.name == "bot.action_failure"]
    assert len(errors) == 1 and errors[0].startswith("action action_check_order failed: ")
    assert errors[0].endswith("; replied with utter_service_unavailable")
    assert all(r.levelno == logging.ERROR for r in caplog.records if r.name == "bot.action_failure")


async def test_an_action_server_error_gets_an_apology() -> None:
    async def crash(_request: web.Request) -> web.Response:
        return web.json_response({"error": "boom"}, status=500)

    async with action_server(crash) as url:
        events, sent = await run_action("action_check_order", url)
    assert_apologised(events, sent)


async def test_a_slow_action_server_gets_an_apology_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.3")

    async def hang(_request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"events": [], "responses": []})

    async with action_server(hang) as url:
        started = time.monotonic()
        events, sent = await run_action("action_check_order", url)
        assert time.monotonic() - started < 3
    assert_apologised(events, sent)


async def test_a_malformed_answer_gets_an_apology() -> None:
    async def nonsense(_request: web.Request) -> web.Response:
        return web.json_response({"events": "not a list"})

    async with action_server(nonsense) as url:
        events, sent = await run_action("action_check_order", url)
    assert_apologised(events, sent)


async def test_a_form_validation_rejection_still_propagates() -> None:
    async def reject(_request: web.Request) -> web.Response:
        body = {"action_name": "validate_order_form", "error": "not an order id"}
        return web.json_response(body, status=400)

    async with action_server(reject) as url:
        with pytest.raises(ActionExecutionRejection) as raised:
            await run_action("validate_order_form", url)
    assert raised.value.action_name == "validate_order_form"


async def test_a_failed_session_start_falls_back_to_rasas_own() -> None:
    events, sent = await run_action("action_session_start", closed_port_url())
    assert [type(e) for e in events] == [SessionStarted, SlotSet, ActionExecuted]
    assert (events[1].key, events[1].value) == ("order_id", "DD1")  # slots carried over
    assert events[2].action_name == "action_listen"
    assert sent == []


async def test_a_working_action_server_is_untouched() -> None:
    async def answer(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "events": [{"event": "slot", "name": "order_id", "value": "DD2"}],
                "responses": [{"text": "on its way"}],
            }
        )

    async with action_server(answer) as url:
        events, sent = await run_action("action_check_order", url)
    assert [type(e) for e in events] == [BotUttered, SlotSet]
    assert [m["text"] for m in sent] == ["on its way"]


def test_installing_twice_wraps_once() -> None:
    import bot.channels.rest  # noqa: F401  (installs at import, as in the Rasa server)

    install()
    install()
    original = RemoteAction.run.__wrapped__
    assert not hasattr(original, "__wrapped__")
    assert original.__qualname__ == "RemoteAction.run"


@pytest.mark.parametrize(("value", "seconds"), [(None, 20.0), ("5", 5.0), ("0", 20.0), ("x", 20.0)])
def test_the_timeout_comes_from_the_environment(
    value: str | None, seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(TIMEOUT_ENV, value)
    assert action_timeout() == seconds


async def test_an_action_that_speaks_without_an_output_channel_keeps_its_events() -> None:
    """trigger_intent on a new conversation starts the session with no output channel."""

    async def answer(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "events": [{"event": "slot", "name": "order_id", "value": "DD3"}],
                "responses": [{"text": "welcome back"}],
            }
        )

    domain = a_domain()
    tracker = DialogueStateTracker.from_events("s", [], domain.slots)
    nlg = TemplatedNaturalLanguageGenerator(domain.responses)
    async with action_server(answer) as url:
        action = RemoteAction("action_check_order", EndpointConfig(url))
        events = await action.run(None, nlg, tracker, domain)  # type: ignore[arg-type]
    assert [type(e) for e in events] == [SlotSet]  # nobody to say "welcome back" to
