"""Exactly once under faults (issue 18), on SQLite and PostgreSQL: a claim reclaimed mid-batch
is sent by its new holder only; a dispatcher frozen in the middle of a send triggers Rasa a
second time, and the care action (the real one, on the same CRM) says it once; two dispatchers
and a reclaimer racing in threads deliver every message once and lose none."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.engine import Engine

from actions.campaign_messages import ActionSendCareMessage
from bot.care.dispatch import DispatchConfig, Dispatcher
from bot.care.notify import Route
from crm_store.clock import Clock, ManualClock, utcnow
from crm_store.db import make_engine, session_scope
from crm_store.deliveries import find_delivery
from crm_store.identities import link_identity, list_identities
from crm_store.outbox import get_care_message, list_care_messages, reclaim_stale_claims
from tests.actions.helpers import DOMAIN, tracker
from tests.bot.care.care_helpers import due_messages

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)
STALE = timedelta(minutes=10)
CONFIG = DispatchConfig(rasa_url="http://rasa.invalid", api_token="t", rate_per_s=1_000, batch=5)
Sender = Callable[[Route, str, Mapping[str, Any]], None]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crm(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
    else:
        url = request.getfixturevalue("postgres_database")()
    engine = make_engine(url)
    yield engine
    engine.dispose()


def customers_with_two_channels(engine: Engine, count: int, clock: Clock) -> list[int]:
    """Due care tips for followers who also chat on the web: two conversations each."""
    ids = due_messages(engine, count, clock=clock)
    with session_scope(engine) as session:
        for message_id in ids:
            customer_id = get_care_message(session, message_id=message_id).customer_id
            link_identity(
                session, customer_id=customer_id, kind="web_user", value=f"u{customer_id}"
            )
    return ids


def route_by(kind: str, channel: str) -> Callable[[Engine, int, Clock], Route]:
    def router(engine: Engine, customer_id: int, _clock: Clock) -> Route:
        with session_scope(engine) as session:
            identities = list_identities(session, customer_id=customer_id)
        [value] = [identity.value for identity in identities if identity.kind == kind]
        return Route(channel, value)

    return router


wechat, web = route_by("wechat_openid", "wechat"), route_by("web_user", "web")


class CareAction:
    """What Rasa does with a trigger: run action_send_care_message in the route's conversation
    (a fresh tracker: nothing of an earlier trigger is in it) and deliver what it says."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.triggers: list[int] = []
        self.said: list[tuple[int, str, str]] = []  # care message, conversation, response

    def __call__(self, route: Route, intent: str, entities: Mapping[str, Any]) -> None:
        message_id = int(entities["care_message_id"])
        state = tracker(
            sender=route.conversation_id,
            text=f"EXTERNAL: {intent}",
            intent=intent,
            entities=[{"entity": "care_message_id", "value": str(message_id)}],
            channel=route.channel,
        )
        action = ActionSendCareMessage()
        action.engine = self.engine
        dispatcher = CollectingDispatcher()
        action.run_in_transaction(dispatcher, state, DOMAIN)
        with self.lock:
            self.triggers.append(message_id)
            self.said += [
                (message_id, route.conversation_id, m["response"]) for m in dispatcher.messages
            ]

    def said_per_message(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for message_id, _, _ in self.said:
            counts[message_id] = counts.get(message_id, 0) + 1
        return counts


def _states(engine: Engine) -> dict[int, tuple[str, int]]:
    with session_scope(engine) as session:
        rows = list_care_messages(session, limit=1000)
    return {row.id: (row.state, row.attempts) for row in rows}


def test_a_claim_reclaimed_mid_batch_is_sent_by_its_new_holder_only(crm: Engine) -> None:
    """The first dispatcher stalls before its second row for longer than the stale window; the
    reclaim takes its unsent rows and a second dispatcher sends them. When the first wakes up,
    its claim check finds the claim lost: it sends neither row again."""
    clock = ManualClock(NOW)
    first_row, second_row, third_row = due_messages(crm, 3, clock=clock)
    sent: list[tuple[str, int]] = []

    def recorder(name: str) -> Sender:
        return lambda route, intent, entities: sent.append((name, entities["care_message_id"]))

    second = Dispatcher(crm, CONFIG, clock=clock, router=wechat, sender=recorder("second"))
    stalls: list[int] = []

    def stalling(engine: Engine, customer_id: int, at: Clock) -> Route:
        if len(sent) == 1 and not stalls:  # after the first send, before the second
            clock.advance(STALE + timedelta(minutes=1))
            with session_scope(engine) as session:
                stalls.append(reclaim_stale_claims(session, older_than=STALE, clock=clock))
            assert second.run_once().sent == 2
        return wechat(engine, customer_id, at)

    first = Dispatcher(crm, CONFIG, clock=clock, router=stalling, sender=recorder("first"))
    report = first.run_once()
    assert stalls == [2]
    assert (report.sent, report.lost_claims) == (1, 2)
    assert sent == [("first", first_row), ("second", second_row), ("second", third_row)]
    assert _states(crm) == {first_row: ("sent", 1), second_row: ("sent", 2), third_row: ("sent", 2)}


def test_a_dispatcher_frozen_in_a_send_triggers_twice_and_the_customer_hears_it_once(
    crm: Engine,
) -> None:
    """Frozen mid-send (SIGSTOP, a Rasa that hangs) for longer than the stale window: the row is
    reclaimed and a second dispatcher sends it, on the web this time; then the frozen trigger
    reaches the action in the WeChat conversation. The delivery recorded in the CRM makes the
    second trigger silent, although neither conversation's history has the other."""
    clock = ManualClock(NOW)
    [message_id] = customers_with_two_channels(crm, 1, clock)
    care_action = CareAction(crm)
    second = Dispatcher(crm, CONFIG, clock=clock, router=web, sender=care_action)

    def frozen_send(route: Route, intent: str, entities: Mapping[str, Any]) -> None:
        clock.advance(STALE + timedelta(minutes=1))
        with session_scope(crm) as session:
            assert reclaim_stale_claims(session, older_than=STALE, clock=clock) == 1
        assert second.run_once().sent == 1
        care_action(route, intent, entities)  # the frozen trigger arrives after all

    first = Dispatcher(crm, CONFIG, clock=clock, router=wechat, sender=frozen_send)
    assert first.run_once().lost_claims == 1  # sent, but the mark belongs to the new claim
    assert care_action.triggers == [message_id, message_id]
    assert care_action.said == [(message_id, "u1", "utter_care_tip_generic")]
    with session_scope(crm) as session:
        delivery = find_delivery(session, care_message_id=message_id)
    assert delivery is not None and (delivery.conversation_id, delivery.channel) == ("u1", "web")
    assert _states(crm) == {message_id: ("sent", 2)}


def test_two_dispatchers_and_a_reclaimer_racing_deliver_every_message_once(crm: Engine) -> None:
    """Real threads on the real clock: two dispatchers (one routes to WeChat, one to the web)
    drain the same outbox while a reclaimer runs with a stale window shorter than some sends.
    Every message is said exactly once and every row ends sent."""
    messages = 24
    stale = timedelta(milliseconds=300)
    ids = customers_with_two_channels(crm, messages, utcnow)
    care_action = CareAction(crm)
    slow = set(ids[::5])  # their first trigger outlives the stale window
    slowed: set[int] = set()
    done = threading.Event()

    def sender(route: Route, intent: str, entities: Mapping[str, Any]) -> None:
        message_id = int(entities["care_message_id"])
        if message_id in slow and message_id not in slowed:
            slowed.add(message_id)
            time.sleep(stale.total_seconds() * 2)
        care_action(route, intent, entities)

    def dispatch(router: Callable[[Engine, int, Clock], Route]) -> Callable[[], None]:
        dispatcher = Dispatcher(crm, CONFIG, router=router, sender=sender)

        def run() -> None:
            deadline = time.monotonic() + 60
            while not done.is_set() and time.monotonic() < deadline:
                if dispatcher.run_once().handled == 0:
                    time.sleep(0.02)

        return run

    def reclaim() -> None:
        while not done.is_set():
            with session_scope(crm) as session:
                reclaim_stale_claims(session, older_than=stale)
            time.sleep(0.05)

    threads = [
        threading.Thread(target=target) for target in (dispatch(wechat), dispatch(web), reclaim)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if {state for state, _ in _states(crm).values()} == {"sent"}:
            break
        time.sleep(0.1)
    done.set()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert {state for state, _ in _states(crm).values()} == {"sent"}
    assert care_action.said_per_message() == dict.fromkeys(ids, 1)
    assert len(care_action.triggers) > messages  # the slow ones were triggered again
