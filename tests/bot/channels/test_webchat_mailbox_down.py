"""The web chat with its CRM mailbox down: the customer still gets the bot's answer and a
usable session, and the failure is logged."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from bot.channels.webchat.channel import WebChatConfig, WebChatInput


@pytest.fixture
def channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[WebChatInput, list[Any]]:
    volume = tmp_path / "volume"
    config = WebChatConfig(database_url=f"sqlite:///{volume / 'crm.db'}", secret="s" * 40)
    webchat = WebChatInput(config)
    volume.rmdir()
    volume.write_text("unmounted")  # from now on every connection to volume/crm.db fails
    emitted: list[Any] = []

    async def emit(event: str, data: Any, **where: Any) -> None:
        emitted.append((event, data, where))

    monkeypatch.setattr(webchat.sio, "emit", emit)
    return webchat, emitted


async def test_an_answer_still_reaches_a_connected_customer(
    channel: tuple[WebChatInput, list[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    webchat, emitted = channel
    with caplog.at_level(logging.ERROR):
        await webchat.deliver("web-" + "a" * 32, {"text": "您好"})
    [(event, data, where)] = emitted
    assert (event, data["text"], where) == ("bot_uttered", "您好", {"room": "web-" + "a" * 32})
    assert str(data["metadata"]["message_id"]).startswith("live-")  # not in later histories
    assert set(data) == {"text", "metadata"}  # what rasa-webchat renders as text
    assert "mailbox unavailable" in caplog.text


async def test_the_session_opens_with_an_empty_history(
    channel: tuple[WebChatInput, list[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    webchat, emitted = channel
    with caplog.at_level(logging.ERROR):
        await webchat._send_history("sid-1", "web-" + "b" * 32)
    assert emitted == [("history", {"messages": []}, {"to": "sid-1"})]
    assert "no history" in caplog.text
