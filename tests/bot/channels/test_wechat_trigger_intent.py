"""trigger_intent?output_channel=wechat on Rasa's own HTTP API: what the caller (the scheduler)
gets back when WeChat takes the message, takes it as a template, or refuses it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import OutputChannel
from rasa.core.lock_store import InMemoryLockStore
from rasa.server import create_app
from rasa.shared.core.trackers import DialogueStateTracker

from bot.channels.wechat.api import forget_tokens
from tests.bot.channels.fake_wechat import FakeWeChat, fake_wechat
from tests.bot.channels.wechat_server import StubBot, make_channel, serve

CARE_TEXT = "王女士您好，您购买的净水器滤芯已使用满半年，建议近期更换"


class CareAgent:
    """Just enough of Rasa's Agent for trigger_intent: the care rule utters one message."""

    def __init__(self) -> None:
        self.lock_store = InMemoryLockStore()
        self.domain = SimpleNamespace(intents=["EXTERNAL_care_tip"])
        self.processor = SimpleNamespace(fetch_tracker_and_update_session=self._tracker)

    def is_ready(self) -> bool:
        return True

    async def _tracker(self, conversation_id: str) -> DialogueStateTracker:
        return DialogueStateTracker(conversation_id, slots=[])

    async def trigger_intent(
        self, intent_name: str, entities: Any, output_channel: OutputChannel, tracker: Any
    ) -> None:
        await output_channel.send_response(tracker.sender_id, {"text": CARE_TEXT})


@dataclass
class Api:
    fake: FakeWeChat
    base: str
    http: aiohttp.ClientSession

    async def trigger(self, openid: str) -> tuple[int, dict[str, Any]]:
        url = f"{self.base}/conversations/{openid}/trigger_intent"
        body = {"name": "EXTERNAL_care_tip"}
        async with self.http.post(url, params={"output_channel": "wechat"}, json=body) as reply:
            return reply.status, await reply.json()


@asynccontextmanager
async def rasa_api(extra: dict[str, Any]) -> AsyncIterator[Api]:
    forget_tokens()
    async with fake_wechat() as (fake, base_url):
        channel = make_channel(base_url, **extra)
        app = create_app(agent=CareAgent(), cors_origins=None)
        async with serve(channel, StubBot(), app) as url, aiohttp.ClientSession() as http:
            yield Api(fake, url.split("/webhooks/")[0], http)
        await channel.api.close()
    forget_tokens()


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with rasa_api({}) as value:
        yield value


@pytest.fixture
async def api_with_template() -> AsyncIterator[Api]:
    async with rasa_api({"template_id": "TPL_CARE", "template_field": "thing1"}) as value:
        yield value


async def test_inside_the_window_the_message_goes_through_the_cs_api(api: Api) -> None:
    status, _body = await api.trigger("oUSER")
    assert status == 200
    assert [item["text"]["content"] for item in api.fake.sent] == [CARE_TEXT]


async def test_outside_the_window_it_goes_out_as_a_template(api_with_template: Api) -> None:
    api_with_template.fake.errcodes.append(45015)
    status, _body = await api_with_template.trigger("oUSER")
    assert status == 200
    [template] = api_with_template.fake.templates
    assert template["template_id"] == "TPL_CARE"
    assert template["data"]["thing1"]["value"] == CARE_TEXT[:19] + "…"


async def test_a_refused_message_is_a_logged_500_that_names_the_reason(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    api.fake.errcodes.append(45015)
    with caplog.at_level(logging.ERROR, logger="bot.channels.wechat.api"):
        status, body = await api.trigger("oUSER")
    assert status == 500
    assert "45015" in body["message"] and "no template" in body["message"]
    assert "wechat delivery to oUSER failed" in caplog.text
