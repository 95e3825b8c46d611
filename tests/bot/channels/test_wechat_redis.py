"""Several Rasa processes behind one webhook URL share the retry map and the token in Redis."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import redis

from bot.channels.wechat.api import WeChatAPI, forget_tokens
from bot.channels.wechat.shared import SharedState
from tests.bot.channels.fake_wechat import APP_ID, APP_SECRET, FakeWeChat, fake_wechat
from tests.bot.channels.wechat_server import StubBot, make_channel, push, serve, signed_query

REDIS_URL = "redis://127.0.0.1:6379/2"


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh key prefix in Redis db 2; under CI=true Redis must be there."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but Redis is unreachable at {REDIS_URL}: {error}")
        pytest.skip(f"Redis is not running at {REDIS_URL}")
    name = f"carebot-test-{secrets.token_hex(6)}"
    yield name
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)
    client.close()


@dataclass
class Process:
    url: str
    bot: StubBot


@dataclass
class Cluster:
    fake: FakeWeChat
    processes: list[Process]
    http: aiohttp.ClientSession

    async def post(self, process: int, body: bytes) -> tuple[int, str]:
        url = self.processes[process].url
        async with self.http.post(url, params=signed_query(), data=body) as reply:
            return reply.status, await reply.text()

    def heard(self) -> list[int]:
        return [len(process.bot.heard) for process in self.processes]


@pytest.fixture
async def cluster(prefix: str) -> AsyncIterator[Cluster]:
    forget_tokens()
    extra: dict[str, Any] = {"redis_url": REDIS_URL, "redis_prefix": prefix}
    async with fake_wechat() as (fake, base_url):
        channels = [make_channel(base_url, **extra) for _ in range(2)]
        bots = [StubBot(), StubBot()]
        async with (
            serve(channels[0], bots[0]) as first,
            serve(channels[1], bots[1]) as second,
            aiohttp.ClientSession() as http,
        ):
            yield Cluster(fake, [Process(first, bots[0]), Process(second, bots[1])], http)
            for channel in channels:
                await channel.idle()
        for channel in channels:
            await channel.api.close()
    forget_tokens()


@pytest.mark.redis
async def test_a_retry_reaching_another_process_does_not_run_the_bot_again(
    cluster: Cluster,
) -> None:
    for process in cluster.processes:
        process.bot.delay = 1.0  # past the 0.5 s deadline: "success", then the CS API

    async def retry_elsewhere() -> tuple[int, str]:
        await asyncio.sleep(0.1)
        return await cluster.post(1, push())

    first, retry = await asyncio.gather(cluster.post(0, push()), retry_elsewhere())
    assert first == retry == (200, "success")
    for _ in range(100):
        if cluster.fake.sent:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert cluster.heard() == [1, 0]
    assert [item["text"]["content"] for item in cluster.fake.sent] == ["您好"]


@pytest.mark.redis
async def test_a_retry_in_another_process_gets_the_same_passive_reply(cluster: Cluster) -> None:
    status, body = await cluster.post(0, push())
    assert status == 200 and "您好" in body
    assert await cluster.post(1, push()) == (status, body)
    assert await cluster.post(0, push()) == (status, body)
    assert cluster.heard() == [1, 0]


@pytest.mark.redis
async def test_a_push_claimed_by_a_silent_process_gets_success_at_the_deadline(
    cluster: Cluster, prefix: str
) -> None:
    claimed = await SharedState(REDIS_URL, APP_ID, prefix).claim("msg:oUSER:1001")
    assert claimed
    assert await cluster.post(1, push()) == (200, "success")
    assert cluster.heard() == [0, 0]


@pytest.fixture
async def clients(prefix: str) -> AsyncIterator[tuple[FakeWeChat, list[WeChatAPI]]]:
    forget_tokens()
    async with fake_wechat() as (fake, base_url):
        apis = [
            WeChatAPI(base_url, APP_ID, APP_SECRET, SharedState(REDIS_URL, APP_ID, prefix))
            for _ in range(3)
        ]
        yield fake, apis
        for api in apis:
            await api.close()


@pytest.mark.redis
async def test_processes_share_one_token(clients: tuple[FakeWeChat, list[WeChatAPI]]) -> None:
    fake, apis = clients
    await asyncio.gather(*(api.send_text("o1", f"{n}") for n, api in enumerate(apis * 3)))
    assert fake.token_fetches == 1
    assert len(fake.sent) == 9


@pytest.mark.redis
async def test_a_stale_token_is_replaced_once_for_every_process(
    clients: tuple[FakeWeChat, list[WeChatAPI]],
) -> None:
    fake, (first, second, _third) = clients
    await first.send_text("o1", "a")
    await second.send_text("o1", "b")
    fake.token_fetches += 1  # an outsider refreshed: TOKEN1 is no longer valid
    await first.send_text("o1", "c")  # 40001, refetch: TOKEN3, stored in Redis
    await second.send_text("o1", "d")  # 40001, reads TOKEN3 from Redis, no fetch
    assert fake.token_fetches == 3
    assert fake.used_tokens == ["TOKEN1", "TOKEN1", "TOKEN1", "TOKEN3", "TOKEN1", "TOKEN3"]
    assert [item["text"]["content"] for item in fake.sent] == ["a", "b", "c", "d"]


@pytest.mark.redis
async def test_a_process_waits_for_the_token_another_is_fetching(
    clients: tuple[FakeWeChat, list[WeChatAPI]], prefix: str
) -> None:
    fake, (api, _second, _third) = clients
    other = SharedState(REDIS_URL, APP_ID, prefix)
    owner = await other.lock_token()
    assert owner is not None

    async def the_other_process_stores_it() -> None:
        await asyncio.sleep(0.3)
        await other.put_token(fake.current_token, 600)
        await other.unlock_token(owner)

    await asyncio.gather(api.send_text("o1", "a"), the_other_process_stores_it())
    await other.close()
    assert fake.token_fetches == 0
    assert len(fake.sent) == 1


async def test_without_redis_each_process_runs_alone() -> None:
    forget_tokens()
    async with fake_wechat() as (fake, base_url):
        channel = make_channel(base_url, redis_url="redis://127.0.0.1:1/0")
        bot = StubBot()
        async with serve(channel, bot) as url, aiohttp.ClientSession() as http:
            async with http.post(url, params=signed_query(), data=push()) as reply:
                assert reply.status == 200 and "您好" in await reply.text()
            await channel.api.send_text("o1", "a")
        await channel.api.close()
    assert len(bot.heard) == 1
    assert fake.token_fetches == 1 and len(fake.sent) == 1
