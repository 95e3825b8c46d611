"""The care scheduler: one long-lived process that plans campaigns and dispatches the outbox.

APScheduler 3.9 with its jobs in the CRM database (`SQLAlchemyJobStore`, table
`apscheduler_jobs`), UTC, `coalesce=True`, `max_instances=1` and a misfire grace time, so a
restart neither loses a day's planning nor runs a missed job more than once. Only the holder of
the leader lock (crm_store/locks.py, polled by bot/care/leader.py) runs jobs; a second process
waits for the lock.

Jobs are module-level functions with primitive arguments and stable ids; they read the running
process's `Runtime` (engine, clock, dispatcher, planner), set once when the process leads. Each
opens its own sessions. Jobs are reconciled at start-up: one whose trigger is unchanged keeps
its stored next run time (so a planning run missed while the process was down still runs, once),
others are replaced, and stale ids are removed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine, make_url

from bot.care.dispatch import (
    DEFAULT_RATE_PER_S,
    DEFAULT_WORKERS,
    DispatchConfig,
    Dispatcher,
    crash_point_from_env,
)
from bot.care.leader import wait_for_leadership
from bot.privacy import run_retention
from bot.settings import scheduler_plan_at
from crm_store.analytics import refresh_customer_metrics
from crm_store.campaigns.registry import campaign_keys
from crm_store.clock import BUSINESS_TZ, Clock, utcnow
from crm_store.dashboard.summaries import record_care_responses, refresh_customer_summary
from crm_store.db import make_engine, session_scope
from crm_store.locks import LeaderLock, lock_for
from crm_store.offers import expire_coupons
from crm_store.outbox import reclaim_stale_claims
from crm_store.personal_data import RetentionPolicy
from crm_store.win_back_outcomes import record_win_back_outcomes

log = logging.getLogger(__name__)

# The registered campaigns (crm_store.campaigns.registry), the most important first: planned in
# this order, one after the other, so a more important campaign takes a customer's budget first.
CAMPAIGNS = tuple(campaign_keys())
JOB_TABLE = "apscheduler_jobs"
DISPATCH_SHARE = 0.8  # of the dispatch interval a dispatch run may take
Planner = Callable[..., Any]  # plan_campaign(session, *, campaign_key, day, clock) -> PlanResult


@dataclass(frozen=True)
class SchedulerConfig:
    database_url: str
    dispatch: DispatchConfig
    dispatch_every_s: float = 10.0
    stale_claim_after: timedelta = timedelta(minutes=10)
    reclaim_every_s: float = 60.0
    plan_at: tuple[int, int] = (0, 5)  # UTC hour, minute (08:05 in Asia/Shanghai)
    autoplan: bool = True
    misfire_grace_s: int = 6 * 3600
    lock_poll_s: float = 5.0
    campaigns: Sequence[str] = CAMPAIGNS
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    tracker_db: str | Path | None = None  # Rasa's transcripts (store URL or file), for retention


def _flag(value: str | None, default: bool) -> bool:
    return default if value in (None, "") else value.lower() not in {"0", "false", "no", "off"}


def config_from_env(
    database_url: str,
    rasa_url: str,
    api_token: str,
    env: Mapping[str, str],
    tracker_db: str | Path | None = None,
) -> SchedulerConfig:
    """The CAREBOT_SCHEDULER_* settings (docs/care_scheduler.md)."""
    plan_at = scheduler_plan_at(env)
    dispatch = DispatchConfig(
        rasa_url=rasa_url,
        api_token=api_token,
        rate_per_s=dispatch_rate(env),
        batch=int(env.get("CAREBOT_SCHEDULER_BATCH", "50")),
        workers=int(env.get("CAREBOT_DISPATCH_WORKERS") or DEFAULT_WORKERS),
        rasa_urls=rasa_urls(env, rasa_url),
        crash_at=crash_point_from_env(env),
    )
    return SchedulerConfig(
        database_url=database_url,
        dispatch=dispatch,
        dispatch_every_s=float(env.get("CAREBOT_SCHEDULER_DISPATCH_EVERY", "10")),
        stale_claim_after=timedelta(seconds=float(env.get("CAREBOT_SCHEDULER_STALE_AFTER", "600"))),
        reclaim_every_s=float(env.get("CAREBOT_SCHEDULER_RECLAIM_EVERY", "60")),
        plan_at=(plan_at.hour, plan_at.minute),
        autoplan=_flag(env.get("CAREBOT_SCHEDULER_AUTOPLAN"), True),
        lock_poll_s=float(env.get("CAREBOT_SCHEDULER_LOCK_POLL", "5")),
        retention=RetentionPolicy.from_env(env),
        tracker_db=tracker_db,
    )


def dispatch_rate(env: Mapping[str, str]) -> float:
    """CAREBOT_DISPATCH_RATE, or the older name CAREBOT_SCHEDULER_RATE, or WeChat's default."""
    value = env.get("CAREBOT_DISPATCH_RATE") or env.get("CAREBOT_SCHEDULER_RATE")
    return float(value) if value else DEFAULT_RATE_PER_S


def rasa_urls(env: Mapping[str, str], rasa_url: str) -> tuple[str, ...]:
    """CAREBOT_DISPATCH_RASA_URLS (comma-separated replicas), or the one Rasa URL."""
    urls = [url.strip() for url in env.get("CAREBOT_DISPATCH_RASA_URLS", "").split(",")]
    return tuple(url for url in urls if url) or (rasa_url,)


def default_planner() -> Planner:
    """crm_store.campaigns.planning's `plan_campaign`, imported when first needed (it is large)."""
    from crm_store.campaigns.planning import plan_campaign

    return plan_campaign


def ensure_campaigns(engine: Engine, clock: Clock) -> None:
    """The campaign rows (and the offers made with them) exist before anything is planned."""
    from crm_store.campaigns.planning import ensure_campaigns as ensure

    with session_scope(engine) as session:
        ensure(session, clock=clock)


@dataclass
class Runtime:
    """What the jobs of the leading process use."""

    engine: Engine
    config: SchedulerConfig
    clock: Clock = utcnow
    planner: Planner | None = None  # None: crm_store.campaigns.planning.plan_campaign
    prepare: Callable[[Engine, Clock], None] | None = None  # run before planning
    dispatcher: Dispatcher | None = None
    lock: LeaderLock | None = None

    def __post_init__(self) -> None:
        if self.dispatcher is None:
            self.dispatcher = Dispatcher(self.engine, self.config.dispatch, clock=self.clock)
        if self.planner is None and self.prepare is None:
            self.prepare = ensure_campaigns

    def plan(self, day: date) -> list[tuple[str, Any]]:
        """Every campaign's rows for `day` (crm_store.campaigns.planning.plan_campaigns), each
        in a transaction of its own; a failing one is logged and does not stop the rest."""
        from crm_store.campaigns.planning import plan_campaigns

        return plan_campaigns(
            lambda: session_scope(self.engine),
            day=day,
            clock=self.clock,
            keys=self.config.campaigns,
            planner=self.planner or default_planner(),
            on_error=lambda key, error: log.error("planning %s failed", key, exc_info=error),
        )


_runtime: Runtime | None = None


def install_runtime(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def _current() -> Runtime:
    if _runtime is None:
        raise RuntimeError("no care scheduler runtime in this process")
    return _runtime


def business_day(clock: Clock) -> date:
    """Today in the shop's time zone: the campaigns' dates are business-zone dates."""
    return clock().astimezone(BUSINESS_TZ).date()


def plan_job() -> None:
    """Today's rows of every campaign, by priority; planning twice writes nothing new.

    Each campaign is planned in its own transaction and a failing one does not stop the rest.
    """
    runtime = _current()
    if runtime.prepare is not None:
        runtime.prepare(runtime.engine, runtime.clock)
    day = business_day(runtime.clock)
    results = runtime.plan(day)
    off = [key for key, result in results if result is None]
    if off:
        log.info("not planned, switched off (a manager switches them on): %s", ", ".join(off))
    for key, result in results:
        if result is not None:
            log.info("planned %s for %s: %s", key, day, result)


def dispatch_job() -> None:
    runtime = _current()
    assert runtime.dispatcher is not None
    # most of the interval, so a run ends before the next one is due (max_instances=1)
    report = runtime.dispatcher.run_for(runtime.config.dispatch_every_s * DISPATCH_SHARE)
    if report.handled:
        log.info("dispatched: %s", report)


def reclaim_job() -> None:
    runtime = _current()
    with session_scope(runtime.engine) as session:
        count = reclaim_stale_claims(
            session, older_than=runtime.config.stale_claim_after, clock=runtime.clock
        )
    if count:
        log.warning("reclaimed %d care messages stuck in sending", count)


def expire_coupons_job() -> None:
    runtime = _current()
    with session_scope(runtime.engine) as session:
        expire_coupons(session, clock=runtime.clock)


def analytics_job() -> None:
    """The nightly snapshot that planning and the dashboard read: lifecycle metrics (churn risk,
    CLV, RFM), the dashboard's customer summary, and the replies to last week's messages."""
    runtime = _current()
    with session_scope(runtime.engine) as session:
        customers = refresh_customer_metrics(session, clock=runtime.clock)
        refresh_customer_summary(session)
        responses = record_care_responses(session, clock=runtime.clock)
    log.info("analytics: %d customers refreshed, %d care responses recorded", customers, responses)


def win_back_outcomes_job() -> None:
    runtime = _current()
    with session_scope(runtime.engine) as session:
        count = record_win_back_outcomes(session, clock=runtime.clock)
    if count:
        log.info("recorded %d win-back outcomes", count)


def retention_job() -> None:
    """Personal data past its period (docs/personal-data.md): turn texts anonymised, mailbox
    messages, expired one-time codes and idle Rasa transcripts deleted."""
    runtime = _current()
    config = runtime.config
    counts = run_retention(runtime.engine, config.tracker_db, config.retention, clock=runtime.clock)
    log.info("retention: %s", counts)


@dataclass(frozen=True)
class JobSpec:
    id: str
    func: Callable[..., None]
    trigger: BaseTrigger
    args: tuple[Any, ...] = field(default=())


def job_specs(config: SchedulerConfig) -> list[JobSpec]:
    """Every job the leading process runs, by stable id."""
    hour, minute = config.plan_at
    daily = CronTrigger(hour=hour, minute=minute, timezone="UTC")
    specs = [
        JobSpec("dispatch", dispatch_job, IntervalTrigger(seconds=config.dispatch_every_s)),
        JobSpec("reclaim", reclaim_job, IntervalTrigger(seconds=config.reclaim_every_s)),
        JobSpec("expire_coupons", expire_coupons_job, CronTrigger(minute=17, timezone="UTC")),
        JobSpec("win_back_outcomes", win_back_outcomes_job, daily),
        JobSpec(
            "retention",
            retention_job,
            CronTrigger(hour=(hour - 2) % 24, minute=minute, timezone="UTC"),
        ),
        # an hour before planning, which reads the churn risk and the customer type
        JobSpec(
            "analytics",
            analytics_job,
            CronTrigger(hour=(hour - 1) % 24, minute=minute, timezone="UTC"),
        ),
    ]
    if config.autoplan:
        specs.append(JobSpec("plan", plan_job, daily))
    return specs


def build_scheduler(config: SchedulerConfig) -> BackgroundScheduler:
    store = SQLAlchemyJobStore(
        url=config.database_url, tablename=JOB_TABLE, engine_options=_jobstore_options(config)
    )
    return BackgroundScheduler(
        jobstores={"default": store},
        timezone="UTC",
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": config.misfire_grace_s,
        },
    )


def _jobstore_options(config: SchedulerConfig) -> dict[str, Any]:
    if make_url(config.database_url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}


def reconcile_jobs(scheduler: BackgroundScheduler, specs: Sequence[JobSpec]) -> None:
    """Keep stored jobs whose definition is unchanged (and their next run), replace the rest."""
    wanted = {spec.id for spec in specs}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            job.remove()
    for spec in specs:
        stored = scheduler.get_job(spec.id)
        if stored is not None and _same(stored, spec):
            continue
        scheduler.add_job(
            spec.func, spec.trigger, args=spec.args, id=spec.id, name=spec.id, replace_existing=True
        )


def _same(job: Any, spec: JobSpec) -> bool:
    return bool(
        job.func_ref == f"{spec.func.__module__}:{spec.func.__qualname__}"
        and tuple(job.args) == spec.args
        and str(job.trigger) == str(spec.trigger)
    )


def lead(runtime: Runtime, stop: threading.Event, check_s: float = 5.0) -> None:
    """Run the jobs until `stop` is set or the lock is lost."""
    scheduler = build_scheduler(runtime.config)
    install_runtime(runtime)
    scheduler.start(paused=True)
    try:
        reconcile_jobs(scheduler, job_specs(runtime.config))
        if runtime.config.autoplan:
            # today's plan now, not only at the next plan_at; idempotent: restarts are harmless
            scheduler.add_job(plan_job, id="plan:startup", replace_existing=True)
        scheduler.resume()
        while not stop.wait(check_s):
            if runtime.lock is not None and not runtime.lock.still_held():
                log.error("the leader lock was lost: stopping the jobs")
                break
    finally:
        scheduler.shutdown(wait=True)
        install_runtime(None)


def run(config: SchedulerConfig, stop: threading.Event, clock: Clock = utcnow) -> None:
    """The process's life: wait for the lock, lead, and wait again if the lock is lost."""
    engine = make_engine(config.database_url)
    lock = lock_for(engine)
    try:
        while not stop.is_set():
            log.info("care scheduler: waiting for the leader lock")
            if not wait_for_leadership(lock, stop, config.lock_poll_s):
                break
            log.info("care scheduler: leading")
            lead(Runtime(engine, config, clock=clock, lock=lock), stop)
            lock.release()
    finally:
        lock.release()
        engine.dispose()
