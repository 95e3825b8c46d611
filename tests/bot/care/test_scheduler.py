"""The scheduler process: jobs in the database, reconciled at start-up; the leader lock; exactly
once under SIGKILL between claim and send and between send and acknowledgement; two schedulers
on one PostgreSQL database."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.bench.care_dispatch import StubRasa
from bot.care.dispatch import DispatchConfig
from bot.care.scheduler import (
    CAMPAIGNS,
    Runtime,
    SchedulerConfig,
    analytics_job,
    build_scheduler,
    config_from_env,
    expire_coupons_job,
    install_runtime,
    job_specs,
    lead,
    plan_job,
    reclaim_job,
    reconcile_jobs,
    win_back_outcomes_job,
)
from crm_store.analytics import get_customer_metrics
from crm_store.campaigns import set_campaign_enabled
from crm_store.campaigns.planning import ensure_campaigns
from crm_store.clock import Clock, ManualClock
from crm_store.db import make_engine, session_scope
from crm_store.locks import AdvisoryLock, FileLock, lock_for
from crm_store.offers import create_offer, issue_coupon, list_coupons
from crm_store.outbox import claim_due_messages, get_care_message, list_care_messages
from tests.bot.care.care_helpers import due_messages
from tests.bot.care.scheduler_process import start_scheduler, stop, wait_until


def _config(url: str, rasa_url: str = "http://127.0.0.1:9", **kwargs: Any) -> SchedulerConfig:
    dispatch = DispatchConfig(rasa_url=rasa_url, api_token="t", rate_per_s=1_000)
    return SchedulerConfig(database_url=url, dispatch=dispatch, **kwargs)


def _states(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        rows = list_care_messages(session, limit=10_000)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    return counts


def test_settings_come_from_the_environment() -> None:
    config = config_from_env(
        "sqlite:///x.db",
        "http://127.0.0.1:5005",
        "tok",
        {
            "CAREBOT_SCHEDULER_AUTOPLAN": "0",
            "CAREBOT_SCHEDULER_RATE": "2.5",
            "CAREBOT_SCHEDULER_PLAN_AT": "01:30",
            "CAREBOT_SCHEDULER_STALE_AFTER": "120",
        },
    )
    assert (config.autoplan, config.dispatch.rate_per_s, config.plan_at) == (False, 2.5, (1, 30))
    assert config.stale_claim_after == timedelta(minutes=2)
    assert config_from_env("sqlite:///x.db", "u", "t", {}).autoplan is True


def test_planning_jobs_exist_only_with_autoplan() -> None:
    ids = {spec.id for spec in job_specs(_config("sqlite:///x.db"))}
    housekeeping = {
        "dispatch",
        "reclaim",
        "expire_coupons",
        "win_back_outcomes",
        "analytics",
        "retention",
    }
    assert ids == {*housekeeping, "plan"}
    manual = {spec.id for spec in job_specs(_config("sqlite:///x.db", autoplan=False))}
    assert manual == housekeeping


def test_jobs_live_in_the_database_and_a_restart_keeps_a_missed_run(sqlite_url: str) -> None:
    """A planning run missed while the process was down still runs (coalesced) after restart."""
    config = _config(sqlite_url)
    scheduler = build_scheduler(config)
    scheduler.start(paused=True)
    reconcile_jobs(scheduler, job_specs(config))
    missed = datetime(2026, 11, 1, 0, 5, tzinfo=timezone.utc)
    scheduler.modify_job("plan", next_run_time=missed)
    scheduler.shutdown()

    again = build_scheduler(config)
    again.start(paused=True)
    reconcile_jobs(again, job_specs(_config(sqlite_url, autoplan=False)))
    assert again.get_job("plan") is None  # stale ids are removed
    reconcile_jobs(again, job_specs(config))
    again.modify_job("plan", next_run_time=missed)
    reconcile_jobs(again, job_specs(config))  # unchanged definition: the stored run is kept
    assert again.get_job("plan").next_run_time == missed
    job = again.get_job("dispatch")
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 6 * 3600)
    reconcile_jobs(again, job_specs(_config(sqlite_url, dispatch_every_s=30)))
    assert again.get_job("dispatch").trigger.interval == timedelta(seconds=30)
    again.shutdown()


@pytest.fixture
def leading() -> Iterator[Callable[[Runtime], None]]:
    """Runs `lead` in a thread; stops it at the end of the test."""
    stops: list[tuple[threading.Event, threading.Thread]] = []

    def start(runtime: Runtime) -> None:
        stop_event = threading.Event()
        thread = threading.Thread(target=lead, args=(runtime, stop_event, 0.1))
        thread.start()
        stops.append((stop_event, thread))

    yield start
    for stop_event, thread in stops:
        stop_event.set()
        thread.join(timeout=30)


def test_the_leader_dispatches_due_messages_and_plans_at_start(
    sqlite_url: str, leading: Callable[[Runtime], None]
) -> None:
    engine = make_engine(sqlite_url)
    ids = due_messages(engine, 3)
    planned: list[tuple[str, date]] = []

    def planner(session: Session, *, campaign_key: str, day: date, clock: Clock) -> str:
        planned.append((campaign_key, day))
        return "planned"

    with StubRasa() as rasa:
        config = _config(sqlite_url, rasa.url, dispatch_every_s=0.2)
        leading(Runtime(engine, config, planner=planner))
        wait_until(lambda: _states(engine) == {"sent": 3}, 30, "3 messages sent")
        wait_until(lambda: len(planned) == len(CAMPAIGNS), 30, "every campaign planned")
    assert rasa.delivered() == ids
    assert [key for key, _ in planned] == list(CAMPAIGNS)  # by priority
    engine.dispose()


def test_planning_skips_the_campaigns_a_manager_switched_off(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(sqlite_url)
    with session_scope(engine) as session:
        ensure_campaigns(session, enabled=True)
        for key in ("win_back", "follow_up"):
            set_campaign_enabled(session, key=key, enabled=False, actor="staff:1")
    planned: list[str] = []

    def planner(session: Session, *, campaign_key: str, day: date, clock: Clock) -> str:
        planned.append(campaign_key)
        return "planned"

    install_runtime(Runtime(engine, _config(sqlite_url), planner=planner))
    try:
        with caplog.at_level(logging.INFO):
            plan_job()
    finally:
        install_runtime(None)
        engine.dispose()
    assert planned == [key for key in CAMPAIGNS if key not in ("win_back", "follow_up")]
    assert "not planned, switched off (a manager switches them on): follow_up, win_back" in (
        caplog.text
    )


def test_one_file_lock_per_sqlite_database(tmp_path: Path) -> None:
    first, second = (
        FileLock(tmp_path / "crm.db.scheduler.lock"),
        FileLock(tmp_path / "crm.db.scheduler.lock"),
    )
    assert first.try_acquire() and first.still_held()
    assert not second.try_acquire()
    first.release()
    assert second.try_acquire()
    second.release()
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    lock = lock_for(engine)
    assert isinstance(lock, FileLock) and lock.path == tmp_path / "crm.db.scheduler.lock"
    engine.dispose()


def test_a_killed_leader_hands_over_to_the_waiting_scheduler_on_sqlite(
    sqlite_url: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_url)
    with StubRasa() as rasa:
        first = start_scheduler(sqlite_url, rasa.url, tmp_path / "first.log")
        second = start_scheduler(sqlite_url, rasa.url, tmp_path / "second.log")
        try:
            wait_until(lambda: _leaders(tmp_path) == 1, 60, "one leader")
            leader, waiting = (first, second) if _leads(tmp_path / "first.log") else (second, first)
            leader.send_signal(signal.SIGKILL)
            leader.wait()
            ids = due_messages(engine, 2)
            wait_until(lambda: _states(engine) == {"sent": 2}, 60, "sent by the successor")
            assert waiting.poll() is None and _leaders(tmp_path) == 2
        finally:
            stop(first)
            stop(second)
    assert rasa.triggered_ids() == ids
    engine.dispose()


def _leads(log: Path) -> bool:
    return log.exists() and "care scheduler: leading" in log.read_text()


def _leaders(folder: Path) -> int:
    return sum(_leads(log) for log in folder.glob("*.log"))


@pytest.mark.parametrize("crash_at", ["after_claim", "after_send"])
def test_exactly_once_when_the_scheduler_is_killed(
    crash_at: str, sqlite_url: str, tmp_path: Path
) -> None:
    """SIGKILL after the claim (nothing sent) or after the send (not acknowledged); restart.

    Every row ends sent, the customer sees each message once and none is missing. After a
    crash after the send Rasa is triggered a second time for that one row: the receiving side
    (the care action, here the stub) recognises the care_message_id and shows nothing new.
    """
    engine = make_engine(sqlite_url)
    ids = due_messages(engine, 5)
    with StubRasa() as rasa:
        crashing = start_scheduler(
            sqlite_url, rasa.url, tmp_path / "crash.log", CAREBOT_CRASH_AT=crash_at
        )
        assert crashing.wait(timeout=60) == -signal.SIGKILL
        assert _states(engine) == {"sending": 5}
        assert rasa.triggered_ids() == ([] if crash_at == "after_claim" else ids[:1])
        restarted = start_scheduler(sqlite_url, rasa.url, tmp_path / "restart.log")
        try:
            wait_until(lambda: _states(engine) == {"sent": 5}, 60, "every row sent")
        finally:
            stop(restarted)
    assert rasa.delivered() == ids  # no duplicate, no gap, in order
    expected = ids if crash_at == "after_claim" else ids[:1] + ids
    assert rasa.triggered_ids() == expected
    engine.dispose()


@pytest.mark.postgres
def test_one_advisory_lock_per_postgresql_database(
    postgres_database: Callable[[], str],
) -> None:
    url = postgres_database()
    first_engine, second_engine = make_engine(url), make_engine(url)
    first, second = AdvisoryLock(first_engine), AdvisoryLock(second_engine)
    try:
        assert isinstance(lock_for(first_engine), AdvisoryLock)
        assert first.try_acquire() and first.still_held()
        assert not second.try_acquire()
        assert first.connection is not None
        pid = first.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with second_engine.connect() as admin:
            admin.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
            admin.commit()
        assert not first.still_held()  # its connection died, and the lock with it
        assert second.try_acquire()
    finally:
        first.release()
        second.release()
        first_engine.dispose()
        second_engine.dispose()


@pytest.mark.postgres
def test_two_schedulers_on_postgresql_send_everything_once(
    postgres_database: Callable[[], str], tmp_path: Path
) -> None:
    url = postgres_database()
    engine = make_engine(url)
    ids = due_messages(engine, 20)
    with StubRasa() as rasa:
        first = start_scheduler(url, rasa.url, tmp_path / "first.log")
        second = start_scheduler(url, rasa.url, tmp_path / "second.log")
        try:
            wait_until(lambda: _states(engine) == {"sent": 20}, 60, "20 sent")
            assert _leaders(tmp_path) == 1
            leader = first if _leads(tmp_path / "first.log") else second
            leader.send_signal(signal.SIGKILL)
            leader.wait()
            more = due_messages(engine, 3, campaign="birthday")
            wait_until(lambda: _states(engine) == {"sent": 23}, 60, "the successor sends")
            assert _leaders(tmp_path) == 2
        finally:
            stop(first)
            stop(second)
    assert rasa.triggered_ids() == ids + more
    engine.dispose()


def test_the_housekeeping_jobs_reclaim_expire_and_measure(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    clock = ManualClock(datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc))
    [message_id] = due_messages(engine, 1, clock=clock)
    with session_scope(engine) as session:
        create_offer(session, key="wb", name="召回券", kind="amount_off", value=500, valid_days=1)
        issue_coupon(session, offer_key="wb", customer_id=1, clock=clock)
        claim_due_messages(session, clock=clock)
    install_runtime(Runtime(engine, _config(sqlite_url), clock=clock))
    try:
        clock.advance(timedelta(days=2))
        reclaim_job()
        expire_coupons_job()
        win_back_outcomes_job()  # no win-back campaign: nothing to measure, no error
        analytics_job()
    finally:
        install_runtime(None)
    with session_scope(engine) as session:
        assert get_care_message(session, message_id=message_id).state == "failed"
        assert [c.status for c in list_coupons(session, customer_id=1)] == ["expired"]
        metrics = get_customer_metrics(session, customer_id=1)  # planning reads this snapshot
        assert metrics.computed_at == clock()
    engine.dispose()
