from __future__ import annotations

import asyncio
import os
import threading

from aiohttp import web

from bot.bench.rest import (
    LoadResult,
    crm_summary_rows,
    load,
    resident_mb,
    summarize,
    summary_rows,
)


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


def result(bot: str, p50: float, rate: float, by_turn: tuple[float, ...] = ()) -> LoadResult:
    return LoadResult(bot, 1, 10, p50, p50 * 1.5, rate, 0, by_turn)


def test_repeats_are_summarized_by_their_median_and_range() -> None:
    summary = summarize([result("carebot", 20, 50), result("carebot", 30, 40), result("c", 22, 45)])
    assert (summary.p50_ms, summary.p50_min_ms, summary.p50_max_ms) == (22, 20, 30)
    assert (summary.throughput, summary.throughput_min, summary.throughput_max) == (45, 40, 50)
    assert summary.repeats == 3


def test_summaries_give_ratios_in_favour_of_the_faster_bot() -> None:
    ours = [summarize([result("carebot", 20.0, 50.0)])]
    stock = [summarize([result("stock", 40.0, 25.0)])]
    rows = summary_rows(ours, stock)
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
    ours = [summarize([result("carebot", 20.0, 50.0, (10.0, 25.0, 10.0))])]
    stock = [summarize([result("stock", 50.0, 25.0)])]
    assert crm_summary_rows(ours, stock)[-1] == "| 1 | 25 | 50 | 2.00× |"


def test_both_bots_are_measured_at_every_level_in_turn_and_long_conversations_by_turn() -> None:
    """Against a fake REST endpoint: A B then B A, every level, each member used once."""
    from bot.bench import rest

    seen: list[str] = []

    async def webhook(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body["sender"])
        return web.json_response([{"recipient_id": body["sender"], "text": "ok"}])

    def serve() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", webhook)
        runner = web.AppRunner(app)
        loop = asyncio.new_event_loop()
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        threading.Thread(target=loop.run_forever, daemon=True).start()
        return runner, port

    _, port = serve()
    url = f"http://127.0.0.1:{port}"
    members = iter(f"bench-{n}" for n in range(100))
    ours = rest.Contender("carebot", url, ["a", "b"], members)
    stock = rest.Contender("stock", url, ["x", "y"])
    mine, theirs = rest.alternate(ours, stock, conversations=2, repeats=2)
    assert [s.concurrency for s in mine] == list(rest.CONCURRENCY)
    assert all(s.repeats == 2 and s.errors == 0 for s in (*mine, *theirs))
    used = [sender for sender in seen if sender.removeprefix("bench-").isdigit()]
    assert len(set(used)) == 2 * len(rest.CONCURRENCY) * 3  # each member one conversation
    rows = rest.long_conversation_rows([stock], turns=6, conversations=2)
    assert rows[-1].startswith("| stock |") and rows[-1].endswith("× |")
