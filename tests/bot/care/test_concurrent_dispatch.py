"""Dispatch scaled out (issue 18): W workers share one rate and never send a row twice, triggers
go round-robin over Rasa replicas, a scheduler's run ends near its time, and two dispatchers
with engines of their own drain one outbox (SQLite and PostgreSQL) sending every row once."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.bench.care_dispatch import StubRasa
from bot.care.dispatch import DEFAULT_RATE_PER_S, DispatchConfig, Dispatcher, Pacer
from bot.care.notify import Route
from bot.care.scheduler import config_from_env
from crm_store.clock import Clock, ManualClock
from crm_store.db import make_engine, session_scope
from crm_store.outbox import list_care_messages
from tests.bot.care.care_helpers import due_messages
from tests.bot.care.scheduler_process import start_scheduler, stop, wait_until

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)


class ThreadedRecorder:
    """A stub sender for many threads: which row went out, from which thread, when."""

    def __init__(self, pause_s: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.sent: list[tuple[int, str, float]] = []
        self.pause_s = pause_s

    def __call__(self, route: Route, intent: str, entities: Mapping[str, Any]) -> None:
        thread = threading.current_thread().name
        with self.lock:
            self.sent.append((int(entities["care_message_id"]), thread, time.monotonic()))
        time.sleep(self.pause_s)  # a trigger takes time: the workers interleave

    def ids(self) -> list[int]:
        return [message_id for message_id, _, _ in self.sent]


def wechat(_engine: Engine, customer_id: int, _clock: Clock) -> Route:
    return Route("wechat", f"o_{customer_id}")


def states(engine: Engine) -> Counter[str]:
    with session_scope(engine) as session:
        return Counter(row.state for row in list_care_messages(session, limit=10_000))


def most_in_one_second(times: list[float]) -> int:
    """The most sends in any window of one second."""
    times = sorted(times)
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


def test_the_pacer_holds_its_rate_under_threads() -> None:
    """8 threads x 25 sends at 10/s on a stopped clock: every send has its own slot, 0.1 s
    after the one before, so each second of the schedule has exactly 10 sends."""
    slept: list[float] = []
    slept_lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with slept_lock:
            slept.append(seconds)

    pacer = Pacer(rate_per_s=10, monotonic=lambda: 0.0, sleep=sleep)

    def sender() -> None:
        for _ in range(25):
            pacer.wait()

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots = sorted([0.0] * (200 - len(slept)) + slept)  # the first send waits for nothing
    assert slots == pytest.approx([n / 10 for n in range(200)])
    per_second = Counter(int(slot + 1e-9) for slot in slots)
    assert set(per_second.values()) == {10} and len(per_second) == 20


def test_workers_send_every_row_once(engine: Engine) -> None:
    clock = ManualClock(NOW)
    ids = due_messages(engine, 120, clock=clock)
    sender = ThreadedRecorder(pause_s=0.002)
    config = DispatchConfig(
        rasa_url="http://rasa.invalid", api_token="t", rate_per_s=10_000, batch=7, workers=4
    )
    report = Dispatcher(engine, config, clock=clock, router=wechat, sender=sender).drain()
    assert report.sent == 120 and report.handled == 120
    assert sorted(sender.ids()) == sorted(ids)  # each once: no row in two workers' batches
    assert len({thread for _, thread, _ in sender.sent}) > 1  # the workers did share the work
    assert states(engine) == Counter(sent=120)


def test_the_rate_holds_across_a_dispatchers_workers(engine: Engine) -> None:
    clock = ManualClock(NOW)
    due_messages(engine, 45, clock=clock)
    sender = ThreadedRecorder()
    config = DispatchConfig(
        rasa_url="http://rasa.invalid", api_token="t", rate_per_s=30, batch=5, workers=4
    )
    started = time.monotonic()
    assert Dispatcher(engine, config, clock=clock, router=wechat, sender=sender).drain().sent == 45
    assert time.monotonic() - started >= 44 / 30  # 45 slots 1/30 s apart
    assert most_in_one_second([at for _, _, at in sender.sent]) <= 30 + 1


def test_triggers_go_round_robin_over_the_rasa_replicas(engine: Engine) -> None:
    clock = ManualClock(NOW)
    due_messages(engine, 6, clock=clock)
    with StubRasa() as first, StubRasa() as second:
        config = DispatchConfig(
            rasa_url="http://unused.invalid",
            api_token="t",
            rate_per_s=1_000,
            rasa_urls=(first.url, second.url),
        )
        assert Dispatcher(engine, config, clock=clock, router=wechat).run_once().sent == 6
    assert (len(first.triggers), len(second.triggers)) == (3, 3)


def test_a_replica_that_fails_fails_its_messages_which_are_retried_later(engine: Engine) -> None:
    clock = ManualClock(NOW)
    due_messages(engine, 4, clock=clock)
    with StubRasa() as good, StubRasa(status=500) as broken:
        config = DispatchConfig(
            rasa_url="http://unused.invalid",
            api_token="t",
            rate_per_s=1_000,
            rasa_urls=(good.url, broken.url),
        )
        dispatcher = Dispatcher(engine, config, clock=clock, router=wechat)
        report = dispatcher.run_once()
        assert (report.sent, report.failed) == (2, 2)
        clock.advance(timedelta(minutes=2))  # past the first backoff
        report = dispatcher.run_once()  # one on each replica again
        assert (report.sent, report.failed) == (1, 1)
    assert len(good.delivered()) == 3 and len(set(good.delivered())) == 3
    assert states(engine) == Counter(sent=3, failed=1)


def test_a_scheduler_run_ends_near_its_time_and_leaves_no_claim_behind(engine: Engine) -> None:
    clock = ManualClock(NOW)
    due_messages(engine, 100, clock=clock)
    config = DispatchConfig(
        rasa_url="http://rasa.invalid", api_token="t", rate_per_s=20, batch=50, workers=2
    )
    dispatcher = Dispatcher(engine, config, clock=clock, router=wechat, sender=ThreadedRecorder())
    started = time.monotonic()
    report = dispatcher.run_for(1.0)
    assert time.monotonic() - started < 1.6
    assert 10 <= report.sent <= 25  # about a second at 20/s, not a batch of 50 per worker
    assert states(engine) == Counter(sent=report.sent, pending=100 - report.sent)


def test_dispatch_settings_come_from_the_environment() -> None:
    env = {
        "CAREBOT_DISPATCH_WORKERS": "3",
        "CAREBOT_DISPATCH_RATE": "12.5",
        "CAREBOT_DISPATCH_RASA_URLS": "http://a:5005, http://b:5005,",
    }
    dispatch = config_from_env("sqlite:///x.db", "http://r:5005", "t", env).dispatch
    assert (dispatch.workers, dispatch.rate_per_s) == (3, 12.5)
    assert dispatch.rasa_urls == ("http://a:5005", "http://b:5005")
    default = config_from_env("sqlite:///x.db", "http://r:5005", "t", {}).dispatch
    assert (default.workers, default.rate_per_s) == (4, DEFAULT_RATE_PER_S)
    assert default.rasa_urls == ("http://r:5005",)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def crm_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_database")())


def test_two_dispatchers_with_their_own_engines_send_every_row_once(crm_url: str) -> None:
    """Two dispatchers (as two scheduler processes would be: an engine each), three workers
    each, drain one outbox at the same time: every row is sent once, none is left."""
    setup = make_engine(crm_url)
    ids = due_messages(setup, 90)
    setup.dispose()
    sender = ThreadedRecorder(pause_s=0.003)
    config = DispatchConfig(
        rasa_url="http://rasa.invalid", api_token="t", rate_per_s=10_000, batch=4, workers=3
    )
    engines = [make_engine(crm_url) for _ in range(2)]
    reports: list[int] = []

    def drain(engine: Engine) -> None:
        reports.append(Dispatcher(engine, config, router=wechat, sender=sender).drain().sent)

    threads = [threading.Thread(target=drain, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert not any(thread.is_alive() for thread in threads)
        assert sorted(sender.ids()) == sorted(ids)
        assert sum(reports) == 90 and all(reports)  # both took part
        assert states(engines[0]) == Counter(sent=90)
    finally:
        for engine in engines:
            engine.dispose()


def test_a_scheduler_with_four_workers_killed_after_a_send_sends_every_row_once_more_at_most(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The scheduler process with 4 workers and two Rasa replicas, SIGKILLed right after its
    first send, then restarted: every row ends sent, and only rows triggered before the kill
    (sent, never acknowledged) are triggered a second time, once; the care action makes that
    second trigger say nothing (tests/bot/care/test_exactly_once.py)."""
    engine = make_engine(sqlite_url)
    ids = due_messages(engine, 12)
    with StubRasa() as rasa, StubRasa() as replica:
        urls = f"{rasa.url},{replica.url}"
        env = {"CAREBOT_DISPATCH_WORKERS": "4", "CAREBOT_DISPATCH_RASA_URLS": urls}
        crashing = start_scheduler(
            sqlite_url, rasa.url, tmp_path / "crash.log", CAREBOT_CRASH_AT="after_send", **env
        )
        assert crashing.wait(timeout=60) == -signal.SIGKILL
        before_the_kill = set(rasa.triggered_ids() + replica.triggered_ids())
        assert before_the_kill  # the kill came after a send
        restarted = start_scheduler(sqlite_url, rasa.url, tmp_path / "restart.log", **env)
        try:
            wait_until(lambda: states(engine) == Counter(sent=12), 60, "every row sent")
        finally:
            stop(restarted)
        triggers = Counter(rasa.triggered_ids() + replica.triggered_ids())
    assert set(triggers) == set(ids)
    assert max(triggers.values()) <= 2
    assert {message for message, count in triggers.items() if count == 2} <= before_the_kill
    assert rasa.triggers and replica.triggers  # both replicas took triggers
    engine.dispose()
