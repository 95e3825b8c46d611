from __future__ import annotations

import asyncio
import os

from aiohttp import web

from bot.bench.rest import LoadResult, crm_turn_rows, load, pairs, resident_mb


async def _serve_and_load(
    concurrency: int, senders: tuple[str, ...] = ()
) -> tuple[LoadResult, list[str]]:
    seen: list[str] = []

    async def webhook(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body["sender"])
        await asyncio.sleep(0.05 if body["message"] == "b" else 0.01)
        return web.json_response([{"recipient_id": body["sender"], "text": "ok"}])

    app = web.Application()
    app.router.add_post("/webhooks/rest/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        url = f"http://127.0.0.1:{port}"
        result = await load("fake", url, ["a", "b", "c"], concurrency, 8, senders)
    finally:
        await runner.cleanup()
    return result, seen


def test_load_runs_every_conversation_and_measures_each_message() -> None:
    result, seen = asyncio.run(_serve_and_load(concurrency=4))
    assert result.messages == 8 * 3 and result.errors == 0
    assert len(seen) == 8 * 3 + 3  # plus the warm-up conversation
    assert len(set(seen)) == 8 + 1  # one sender per conversation
    assert 10 <= result.p50_ms <= result.p95_ms
    assert result.throughput > 0


def test_pairs_give_ratios_in_favour_of_the_faster_bot() -> None:
    ours = [LoadResult("carebot", 1, 10, 20.0, 30.0, 50.0, 0)]
    stock = [LoadResult("stock", 1, 10, 40.0, 60.0, 25.0, 0)]
    rows = pairs(ours, stock)
    assert rows[-1].endswith("| 2.00× | 2.00× |")
    assert "| stock |" in rows[-2]


def test_resident_memory_of_this_process_is_positive() -> None:
    assert resident_mb(os.getpid()) > 10


def test_given_senders_are_each_used_for_one_conversation_and_turns_are_timed_apart() -> None:
    members = tuple(f"bench-{n}" for n in range(9))
    result, seen = asyncio.run(_serve_and_load(concurrency=3, senders=members))
    assert set(seen) == set(members) and seen.count("bench-0") == 3
    fast, slow, _ = result.p50_by_turn
    assert slow >= 50 > fast


def test_the_crm_turn_is_compared_with_the_stock_median_turn() -> None:
    ours = [LoadResult("carebot", 1, 10, 20.0, 30.0, 50.0, 0, (10.0, 25.0, 10.0))]
    stock = [LoadResult("stock", 1, 10, 50.0, 60.0, 25.0, 0)]
    assert crm_turn_rows(ours, stock)[-1] == "| 1 | 25 | 50 | 2.00× |"
