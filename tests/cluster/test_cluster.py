"""The production profile on several hosts (network namespaces), under bounded load, with faults.

The tests run in this order on one cluster (tests/cluster/conftest.py): the plain load (web
chat and REST at once) with two Rasa replicas, the web chat pinned through the balancer,
RabbitMQ and the log consumer going away, then one Rasa replica killed (the rest run on the
one left), and PostgreSQL restarted.
Every load is bounded: 200 conversations of 3 turns, each run in at most a few minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
import uuid
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest

from bot.channels.webchat.auth import issue_token
from crm_store.campaigns import set_campaign_enabled
from crm_store.campaigns.planning import ensure_campaigns
from crm_store.customers import create_customer
from crm_store.db import make_engine, session_scope
from crm_store.deliveries import find_delivery
from crm_store.identities import link_identity
from crm_store.outbox import enqueue_care_message, get_care_message
from crm_store.points import earn_points
from tests.cluster.checks import tracker_user_texts, wait_for_crm_turns, webchat_bot_message_ids
from tests.cluster.cluster import Cluster
from tests.cluster.conftest import cpu_seconds
from tests.cluster.load import (
    TEXTS,
    WEBHOOK,
    LoadResult,
    Progress,
    WebChatter,
    quantile,
    replies_per_turn,
    run_load,
    run_web_load,
    send,
)
from tests.integration.webchat_client import WebChatCustomer

pytestmark = pytest.mark.cluster

CONVERSATIONS = 200


def senders(prefix: str, count: int = CONVERSATIONS) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"{prefix}-{run}-{n}" for n in range(count)]


def assert_every_turn_answered_and_logged_once(
    cluster: Cluster, result: LoadResult, *, crm_wait_s: float = 60.0
) -> float:
    """Every turn answered to its own sender; the tracker's history and the CRM's interaction
    log hold each conversation's turns exactly once, in order. Returns when the CRM had them."""
    assert result.failures == []
    expected = {sender: list(TEXTS) for sender in result.conversations}
    for sender, turns in result.conversations.items():
        assert [turn.text for turn in turns] == list(TEXTS)
        for turn in turns:
            assert turn.replies, f"{sender} {turn.text!r}: no reply"
            assert {reply.get("recipient_id") for reply in turn.replies} == {f"rest:{sender}"}
    assert tracker_user_texts(cluster.tracker_url, list(expected)) == expected
    logged, complete_at = wait_for_crm_turns(cluster.crm_url, expected, crm_wait_s)
    wrong = {sender: turns for sender, turns in logged.items() if turns != expected[sender]}
    assert wrong == {}, f"{len(wrong)} conversations logged wrongly: {list(wrong.items())[:3]}"
    return complete_at


def record(measured: dict[str, Any], name: str, result: LoadResult, **extra: Any) -> None:
    measured[name] = {
        "conversations": len(result.conversations),
        "turns": len(result.turns),
        "seconds": round(result.elapsed_s, 1),
        "turns_per_s": round(result.throughput, 1),
        "p50_ms": round(result.percentile(0.5) * 1000),
        "p95_ms": round(result.percentile(0.95) * 1000),
        "retried": result.retried,
        **extra,
    }
    print(f"{name}: {result.summary()} {extra}")


def replica_cpu(cluster: Cluster, names: list[str]) -> dict[str, float]:
    return {name: cpu_seconds(cluster.processes[name].pid) for name in names}


WEB_CONVERSATIONS = CONVERSATIONS // 2


def members_with_points(crm_url: str, count: int) -> dict[str, int]:
    """Members with a website login, each with a points balance no other has: user -> balance."""
    made: dict[str, int] = {}
    engine = make_engine(crm_url)
    try:
        with session_scope(engine) as session:
            for n in range(count):
                user = f"u{secrets.token_hex(6)}"
                phone = f"139{secrets.randbelow(10**8):08d}"
                customer = create_customer(session, name="赵敏", phone=phone, quiet_hours=None)
                link_identity(session, customer_id=customer.id, kind="web_user", value=user)
                balance = 1000 + 37 * n
                earn_points(session, customer_id=customer.id, points=balance, reason="cluster test")
                made[user] = balance
    finally:
        engine.dispose()
    return made


def web_chatters(cluster: Cluster, balances: dict[str, int]) -> list[WebChatter]:
    """The members' widgets, logged in; every other one on websockets only (rasa-webchat), the
    rest long polling first and then upgrading (our widget)."""
    secret, now = cluster.env["CAREBOT_WEBCHAT_SECRET"], datetime.now(timezone.utc)
    return [
        WebChatter(user, issue_token(user, secret, now), ["websocket"] if n % 2 else None)
        for n, user in enumerate(balances)
    ]


def assert_web_chat_answered_in_its_own_conversation(
    cluster: Cluster, result: LoadResult, balances: dict[str, int]
) -> None:
    """Every web chat turn answered on its member's own socket: the session it was confirmed in
    is the member's, the points balance it shows is that member's (each has a balance of their
    own) and no other, and the bot messages it received are exactly those the web chat stored
    for that session, each once. The tracker and the CRM hold each turn once, in order."""
    assert result.failures == []
    expected = {user: list(TEXTS) for user in result.conversations}
    stored = webchat_bot_message_ids(cluster.crm_url, list(expected))
    for user, turns in result.conversations.items():
        assert [turn.text for turn in turns] == list(TEXTS)
        assert {turn.sender for turn in turns} == {user}
        balance = f"您是普通会员，当前积分 {balances[user]} 分。"
        for turn in turns:  # the member's own balance, in the answer to their question only
            shown = [reply.get("text") or "" for reply in turn.replies]
            asked = turn.text == "我的积分还有多少"
            assert [text for text in shown if "当前积分" in text] == ([balance] if asked else [])
        received = [reply["message_id"] for turn in turns for reply in turn.replies]
        assert received == stored[user], f"{user}: received {received}, stored {stored[user]}"
    assert tracker_user_texts(cluster.tracker_url, list(expected), prefix="") == expected
    logged, _ = wait_for_crm_turns(cluster.crm_url, expected, 60, prefix="")
    wrong = {user: turns for user, turns in logged.items() if turns != expected[user]}
    assert wrong == {}, f"{len(wrong)} web chats logged wrongly: {list(wrong.items())[:3]}"


def test_200_conversations_web_chat_and_rest_through_the_balancer_on_two_replicas(
    cluster: Cluster, measured: dict[str, Any]
) -> None:
    """100 members on the web chat (sockets through the balancer) and 100 REST conversations,
    all at once, 3 turns each: every reply reaches its own conversation, each turn is in the
    tracker and the CRM once; p50/p95 of each channel recorded."""
    names = ["rasa1", "rasa2", "actions1", "actions2"]
    balances = members_with_points(cluster.crm_url, WEB_CONVERSATIONS + 1)
    alone, *chatters = web_chatters(cluster, balances)
    people = senders("two", CONVERSATIONS - WEB_CONVERSATIONS)
    counts = asyncio.run(replies_per_turn(cluster.balancer_url, alone))

    async def both() -> tuple[LoadResult, LoadResult]:
        url = cluster.balancer_url
        return await asyncio.gather(run_load(url, people), run_web_load(url, chatters, counts))

    before = replica_cpu(cluster, names)
    rest, web = asyncio.run(both())
    after = replica_cpu(cluster, names)
    cpu = {name: round(after[name] - before[name], 1) for name in names}
    elapsed = max(rest.elapsed_s, web.elapsed_s)
    turns = len(rest.turns) + len(web.turns)
    record(measured, "two replicas, REST", rest)
    record(
        measured,
        "two replicas, web chat",
        web,
        replies_per_turn=counts,
        socket_open_p95_ms=round(quantile(web.opened_s, 0.95) * 1000),
    )
    measured["two replicas, both"] = {
        "turns": turns,
        "seconds": round(elapsed, 1),
        "turns_per_s": round(turns / elapsed, 1),
        "cpu_s": cpu,
    }
    assert rest.retried == 0
    assert_every_turn_answered_and_logged_once(cluster, rest)
    assert_web_chat_answered_in_its_own_conversation(cluster, web, balances)
    assert cpu["rasa1"] > 1 and cpu["rasa2"] > 1  # the balancer used both replicas


WEB_CUSTOMERS = 20


async def web_customer(url: str, pinned: set[str]) -> tuple[str, list[Any], aiohttp.ClientSession]:
    """A web chat customer on long polling only (every request through the balancer), with its
    own cookies like a browser; says hello and returns its session, replies and HTTP session."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # an IP address host
    customer = WebChatCustomer(url, transports=["polling"], http_session=http)
    await customer.open()
    await customer.say("你好")
    replies = await customer.messages_until_quiet(quiet=1.5, first=60)
    pinned.update(cookie.value for cookie in http.cookie_jar if cookie.key == "carebot_rasa")
    await customer.close()
    assert customer.session_id is not None
    return customer.session_id, replies, http


def test_web_chat_long_polling_stays_on_its_replica(cluster: Cluster) -> None:
    """Without the balancer's cookie, half of a socket.io session's polls would reach the other
    replica, which does not know the session, and the chat would break."""

    async def chat() -> tuple[list[Any], set[str]]:
        pinned: set[str] = set()
        done = await asyncio.wait_for(
            asyncio.gather(
                *(web_customer(cluster.balancer_url, pinned) for _ in range(WEB_CUSTOMERS))
            ),
            180,
        )
        for _, _, http in done:
            await http.close()
        return [replies for _, replies, _ in done], pinned

    replies, pinned = asyncio.run(chat())
    assert all(replies) and len(replies) == WEB_CUSTOMERS
    assert pinned == {"rasa1", "rasa2"}  # pinned, and spread over both replicas


CARE_CUSTOMERS = 30
# A frozen replica holds its triggers this long: past a claim's lease
# (CAREBOT_SCHEDULER_STALE_AFTER, 10 s here) and the reclaim that follows (every 2 s).
FREEZE_S = 20.0


def web_members(crm_url: str, count: int) -> list[tuple[int, str]]:
    """Members with a website login (customer id, web user) and the follow-up campaign on."""
    made: list[tuple[int, str]] = []
    engine = make_engine(crm_url)
    try:
        with session_scope(engine) as session:
            ensure_campaigns(session)
            set_campaign_enabled(session, key="follow_up", enabled=True, actor="cluster-test")
            for _ in range(count):
                user = f"u{secrets.token_hex(6)}"
                phone = f"139{secrets.randbelow(10**8):08d}"
                customer = create_customer(session, name="赵敏", phone=phone, quiet_hours=None)
                link_identity(session, customer_id=customer.id, kind="web_user", value=user)
                made.append((customer.id, user))
    finally:
        engine.dispose()
    return made


def queue_follow_ups(crm_url: str, customer_ids: list[int]) -> list[int]:
    engine = make_engine(crm_url)
    try:
        with session_scope(engine) as session:
            queued = [
                enqueue_care_message(
                    session,
                    customer_id=customer_id,
                    campaign_key="follow_up",
                    period="2026-11",
                    channel="web",
                )[0].id
                for customer_id in customer_ids
            ]
    finally:
        engine.dispose()
    return queued


def outbox_states(crm_url: str, message_ids: list[int]) -> dict[int, tuple[str, int]]:
    """Each care message's state and how many deliveries the CRM recorded for it."""
    engine = make_engine(crm_url)
    try:
        with session_scope(engine) as session:
            return {
                message_id: (
                    get_care_message(session, message_id=message_id).state,
                    int(find_delivery(session, care_message_id=message_id) is not None),
                )
                for message_id in message_ids
            }
    finally:
        engine.dispose()


async def chatting_members_with_follow_ups(
    cluster: Cluster, members: list[tuple[int, str]]
) -> tuple[list[WebChatCustomer], list[int]]:
    """Each member's web chat open (websockets through the balancer), then a follow-up queued
    for each; the widgets and the care messages' ids."""
    secret = cluster.env["CAREBOT_WEBCHAT_SECRET"]
    widgets = [
        WebChatCustomer(
            cluster.balancer_url,
            issue_token(user, secret, datetime.now(timezone.utc)),
            transports=["websocket"],
        )
        for _, user in members
    ]
    await asyncio.wait_for(asyncio.gather(*(widget.open() for widget in widgets)), 120)
    ids = await asyncio.to_thread(
        queue_follow_ups, cluster.crm_url, [customer for customer, _ in members]
    )
    return widgets, ids


def test_the_scheduler_leader_killed_mid_dispatch_another_leads_nothing_twice(
    cluster: Cluster, measured: dict[str, Any]
) -> None:
    """30 members chat on the website (websockets through the balancer); a follow-up for each
    is queued; when a third are sent, the leading scheduler is SIGKILLed. The standby (a second
    scheduler, waiting on PostgreSQL's advisory lock) takes over, reclaims what the dead one
    held, and every member gets their message exactly once."""
    members = web_members(cluster.crm_url, CARE_CUSTOMERS)
    cluster.start("scheduler2")

    async def scenario() -> tuple[list[int], list[list[Any]], float]:
        widgets, ids = await chatting_members_with_follow_ups(cluster, members)
        deadline = time.monotonic() + 120
        while await asyncio.to_thread(sent_count, cluster.crm_url, ids) < len(ids) // 3:
            assert time.monotonic() < deadline, "the leader sent nothing"
            await asyncio.sleep(0.2)
        await asyncio.to_thread(cluster.kill, "scheduler")
        killed = time.monotonic()
        while any(
            state != "sent"
            for state, _ in (await asyncio.to_thread(outbox_states, cluster.crm_url, ids)).values()
        ):
            assert time.monotonic() < deadline, "the standby did not finish the dispatch"
            await asyncio.sleep(0.5)
        finished = time.monotonic() - killed
        await asyncio.sleep(3)  # a second copy of any message would arrive by now
        shown = [drain(widget) for widget in widgets]
        await asyncio.gather(*(widget.close() for widget in widgets))
        return ids, shown, finished

    ids, shown, finished = asyncio.run(scenario())
    states = outbox_states(cluster.crm_url, ids)
    assert set(states.values()) == {("sent", 1)}
    assert [len(messages) for messages in shown] == [1] * CARE_CUSTOMERS
    measured["scheduler leader SIGKILLed mid-dispatch"] = {
        "care_messages": len(ids),
        "all_sent_s_after_the_kill": round(finished, 1),
        "duplicates": 0,
        "lost": 0,
    }


def test_a_rasa_replica_frozen_past_the_reclaim_during_dispatch_sends_nothing_twice(
    cluster: Cluster, measured: dict[str, Any]
) -> None:
    """30 members chat on the website; a follow-up for each is queued; when a third are sent,
    one Rasa replica is frozen (SIGSTOP) for longer than a claim's lease, so the triggers it
    holds outlive their claims and are claimed and sent again through the other replica. When
    it thaws it finishes what it held. Every member still sees their message exactly once, and
    the CRM records one delivery each."""
    members = web_members(cluster.crm_url, CARE_CUSTOMERS)
    frozen_for = FREEZE_S

    async def scenario() -> tuple[list[int], list[list[Any]]]:
        widgets, ids = await chatting_members_with_follow_ups(cluster, members)
        deadline = time.monotonic() + 180
        while await asyncio.to_thread(sent_count, cluster.crm_url, ids) < len(ids) // 3:
            assert time.monotonic() < deadline, "nothing was sent"
            await asyncio.sleep(0.2)
        cluster.signal("rasa1", signal.SIGSTOP)
        try:
            await asyncio.sleep(frozen_for)
        finally:
            cluster.signal("rasa1", signal.SIGCONT)
        while await asyncio.to_thread(sent_count, cluster.crm_url, ids) < len(ids):
            assert time.monotonic() < deadline, "the dispatch did not finish after the thaw"
            await asyncio.sleep(0.5)
        await asyncio.sleep(5)  # a second copy from the thawed replica would arrive by now
        shown = [drain(widget) for widget in widgets]
        await asyncio.gather(*(widget.close() for widget in widgets))
        return ids, shown

    ids, shown = asyncio.run(scenario())
    states = outbox_states(cluster.crm_url, ids)
    assert set(states.values()) == {("sent", 1)}
    assert [len(messages) for messages in shown] == [1] * CARE_CUSTOMERS
    measured["a Rasa replica frozen (SIGSTOP) past the reclaim mid-dispatch"] = {
        "care_messages": len(ids),
        "frozen_s": frozen_for,
        "duplicates": 0,
        "lost": 0,
    }


def sent_count(crm_url: str, message_ids: list[int]) -> int:
    return sum(state == "sent" for state, _ in outbox_states(crm_url, message_ids).values())


def drain(widget: WebChatCustomer) -> list[Any]:
    """Every bot message the widget has received so far."""
    messages = []
    while not widget.received.empty():
        messages.append(widget.received.get_nowait())
    return messages


def test_rabbitmq_cut_and_log_consumer_restart_lose_and_double_no_turn(
    cluster: Cluster, measured: dict[str, Any]
) -> None:
    """The broker goes away (the test's proxy to it is cut) and the log consumer is killed
    mid-load; both come back 10 s later. Rasa keeps answering and keeps the events it could
    not publish; every turn reaches the CRM once."""
    people = senders("mq")
    restored: list[float] = []

    async def fault(progress: Progress) -> None:
        await progress.reached(len(people)).wait()  # a third of the turns answered
        await asyncio.to_thread(cluster.proxy.cut)
        await asyncio.to_thread(cluster.kill, "consumer")
        await asyncio.sleep(10)
        await asyncio.to_thread(cluster.proxy.restore)
        await asyncio.to_thread(cluster.start, "consumer")
        restored.append(time.monotonic())

    result = asyncio.run(run_load(cluster.balancer_url, people, during=fault))
    assert result.failures == [] and result.retried == 0  # customers noticed nothing
    complete_at = assert_every_turn_answered_and_logged_once(cluster, result, crm_wait_s=120)
    record(
        measured,
        "RabbitMQ cut and log consumer killed for 10 s",
        result,
        crm_complete_s_after_the_load=round(complete_at - result.ended_at, 1),
        crm_complete_s_after_restore=round(complete_at - restored[0], 1),
    )


def test_a_rasa_replica_killed_mid_load_loses_no_conversation(
    cluster: Cluster, measured: dict[str, Any]
) -> None:
    """SIGKILL one replica a third of the way through: the balancer stops sending it turns,
    every conversation goes on with its history on the other. A turn the dead replica held
    fails once and the back end sends it again (load.py); that is the only way a turn can be
    there twice, and each one is counted. What reached the interaction log is checked by the
    next test (the log consumer reconciles from the tracker store: issue 18)."""
    people = senders("kill")
    detected: list[float] = []

    async def fault(progress: Progress) -> None:
        await progress.reached(len(people)).wait()
        await asyncio.to_thread(cluster.kill, "rasa1")
        detected.append(await asyncio.to_thread(cluster.wait_for_balancer, {"rasa1"}, "DOWN"))

    async def scenario() -> tuple[LoadResult, list[WebChatCustomer], set[str]]:
        pinned: set[str] = set()
        chatting = await asyncio.wait_for(
            asyncio.gather(*(web_chat(cluster.balancer_url, pinned) for _ in range(10))), 120
        )
        loaded = await run_load(cluster.balancer_url, people, during=fault)
        back = await asyncio.wait_for(
            asyncio.gather(*(reconnect(cluster.balancer_url, *chat) for chat in chatting)), 120
        )
        return loaded, back, pinned

    result, reconnected, pinned = asyncio.run(scenario())
    assert "rasa1" in pinned  # some web chat customers were on the replica that died
    for customer in reconnected:  # ... and every one is back, with the history, and answered
        assert [(m["sender"], m.get("text")) for m in customer.history][:1] == [("user", "你好")]
        assert customer.errors == []
    assert result.failures == []
    retried = {(turn.sender, turn.text) for turn in result.turns if turn.attempts > 1}
    history = tracker_user_texts(cluster.tracker_url, people)
    # The log consumer reconciles from the tracker store (bot/reconcile.py), so the CRM gets
    # every stored customer turn, a turn the dead replica stored before the retry's too.
    logged, _ = wait_for_crm_turns(cluster.crm_url, history, 60)
    doubled, missing_from_crm = 0, 0
    for sender in people:
        again = {text for who, text in retried if who == sender}
        kept = without_retried_doubles(history[sender], again)
        doubled += len(history[sender]) - len(kept)
        assert kept == list(TEXTS), f"{sender}'s history: {history[sender]}"
        missing_from_crm += len(set(TEXTS) - set(logged[sender]))
    in_flight = [turn.latency_s for turn in result.turns if turn.attempts > 1]
    AFTER_THE_KILL["turns missing from the CRM"] = missing_from_crm
    record(
        measured,
        "one of two replicas SIGKILLed mid-load",
        result,
        balancer_noticed_s=round(detected[0], 1),
        turns_retried_by_the_client=len(in_flight),
        slowest_retried_turn_s=round(max(in_flight, default=0.0), 1),
        turns_stored_twice_by_a_retry=doubled,
        customer_turns_missing_from_the_crm=missing_from_crm,
    )


AFTER_THE_KILL: dict[str, int] = {}


def test_no_turn_the_killed_replica_answered_is_missing_from_the_interaction_log() -> None:
    assert AFTER_THE_KILL.get("turns missing from the CRM") == 0


async def web_chat(url: str, pinned: set[str]) -> tuple[WebChatCustomer, aiohttp.ClientSession]:
    """A web chat customer on long polling (pinned to a replica by the cookie) who said hello."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    customer = await WebChatCustomer(url, transports=["polling"], http_session=http).open()
    await customer.say("你好")
    await customer.messages_until_quiet(quiet=1.5, first=60)
    pinned.update(cookie.value for cookie in http.cookie_jar if cookie.key == "carebot_rasa")
    return customer, http


async def reconnect(
    url: str, before: WebChatCustomer, http: aiohttp.ClientSession
) -> WebChatCustomer:
    """The widget after its socket dropped: the same browser (cookie) asks for its session
    again, sees its history and goes on chatting."""
    with contextlib.suppress(Exception):  # its replica may be gone
        await before.close()
    again = await WebChatCustomer(url, transports=["polling"], http_session=http).open(
        before.session_id
    )
    await again.say("谢谢")
    await again.messages_until_quiet(quiet=1.5, first=60)
    await again.close()
    await http.close()
    return again


def without_retried_doubles(said: list[str], retried: set[str]) -> list[str]:
    """`said` with a retried turn's immediate repetition removed (the dead replica had stored
    the turn before it could answer, so the retry stored it again)."""
    kept: list[str] = []
    for text in said:
        if kept and kept[-1] == text and text in retried:
            continue
        kept.append(text)
    return kept


def test_one_replica_left_serves_the_same_load(cluster: Cluster, measured: dict[str, Any]) -> None:
    """The table's other row: the same 200 conversations on the replica that is left."""
    if cluster.processes["rasa1"].poll() is None:
        cluster.kill("rasa1")
    cluster.wait_for_balancer({"rasa1"}, "DOWN")
    before = cpu_seconds(cluster.processes["rasa2"].pid)
    result = asyncio.run(run_load(cluster.balancer_url, senders("one")))
    cpu = round(cpu_seconds(cluster.processes["rasa2"].pid) - before, 1)
    record(measured, "one replica", result, cpu_s={"rasa2": cpu})
    assert result.retried == 0
    assert_every_turn_answered_and_logged_once(cluster, result)


def test_postgresql_restart(cluster: Cluster, measured: dict[str, Any]) -> None:
    """The test's own PostgreSQL (the CRM and the conversations) stops for 10 s and starts
    again: what customers get meanwhile is recorded; afterwards every part works again without
    anyone restarting it."""

    async def outage() -> list[tuple[int, list[dict[str, Any]]]]:
        async with aiohttp.ClientSession() as session:
            return await asyncio.gather(
                *(
                    send(session, cluster.balancer_url + WEBHOOK, sender, "你好")
                    for sender in senders("pg", 10)
                )
            )

    cluster.postgres.stop("fast")
    stopped = time.monotonic()
    answers = asyncio.run(asyncio.wait_for(outage(), 120))
    time.sleep(max(0.0, 10 - (time.monotonic() - stopped)))
    cluster.postgres.start()
    back = time.monotonic()
    result = asyncio.run(run_load(cluster.balancer_url, senders("after-pg", 50)))
    statuses = sorted({status for status, _ in answers})
    record(
        measured,
        "PostgreSQL stopped for 10 s",
        result,
        statuses_during_the_outage=statuses,
        replies_during_the_outage=sorted({r.get("text", "")[:40] for _, rs in answers for r in rs}),
        first_load_after_restart_s=round(time.monotonic() - back, 1),
    )
    assert_every_turn_answered_and_logged_once(cluster, result, crm_wait_s=90)
