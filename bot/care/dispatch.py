"""Dispatch: claim due outbox rows, route each to the channel that reaches the customer now,
trigger its EXTERNAL_ intent through Rasa, and record what happened.

Exactly once, end to end: the outbox row exists before any send (planning writes it), a claim
moves it to `sending` in its own committed transaction, the trigger goes to Rasa, and only then
is the row marked sent. Immediately before each trigger the dispatcher renews its claim on the
row (`renew_claim`: one guarded UPDATE that checks the claim token and restarts the lease, with
a heartbeat for the rest of the batch); a claim lost meanwhile (a batch slower than the stale
window, a frozen process, the row reclaimed and perhaps claimed by another dispatcher) is not
sent. A crash after the claim leaves the row in `sending`; the reclaim job makes it retryable
once the claim is stale. A crash after the send but before the mark does the same, and the
retry reaches Rasa twice: the action that composes the message records the row's delivery in
the CRM under the row's id before it says anything (crm_store.deliveries), so the second
trigger says nothing, in whichever conversation or channel it lands. So the customer gets each
message once (at-least-once triggers, idempotent receiver), and no row is ever lost.

Scaling out (issue 18): the leader's dispatcher runs `workers` threads, each claiming and sending
batches of its own (a claim is one UPDATE under a fresh token, so no row is in two workers'
batches), all waiting on one thread-safe `Pacer`, so the process as a whole keeps to
`rate_per_s`. Triggers go round-robin over `rasa_urls` (several Rasa replicas without a load
balancer; they share the tracker store and the lock store, so any replica may trigger any
conversation); a replica that fails a trigger fails that message, which is retried later.

`CAREBOT_CRASH_AT=after_claim|after_send` makes the dispatcher kill its own process (SIGKILL) at
that point, once per process; the crash tests use it, nothing else should.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from bot.care.notify import NotDelivered, Route, route_for, trigger
from crm_store.campaigns import get_campaign_by_id
from crm_store.campaigns.registry import spec_for
from crm_store.campaigns.rules import BUSINESS_TZ, business_midnight, defer_past_quiet_hours
from crm_store.clock import Clock, utcnow
from crm_store.customers import get_consents, get_customer
from crm_store.db import session_scope
from crm_store.errors import Conflict
from crm_store.orders import find_order
from crm_store.outbox import (
    CareMessage,
    claim_due_messages,
    defer_message,
    mark_failed,
    mark_sent,
    mark_skipped,
    renew_claim,
)

log = logging.getLogger(__name__)

UNREACHABLE = "unreachable"
QUIET_HOURS = "quiet_hours"
NO_CONSENT = "no_consent"
CAMPAIGN_OFF = "campaign_off"
DAILY_QUOTA = "daily_quota"
CAMPAIGN_OFF_RETRY = timedelta(minutes=30)  # a switched-off campaign's rows are looked at again
CRASH_POINTS = ("after_claim", "after_send")
# WeChat refusals that say the customer cannot be reached on WeChat now (43004: unfollowed;
# 45015/45047: the customer-service window is closed or used up and no template is configured)
# or not before tomorrow (45009: the account's daily quota; it resets at midnight in China).
# The message waits, like one for a customer no channel reaches; it does not fail. The WeChat
# output names the errcode in its reason (bot/channels/wechat/api.py, HANDLED_ERRCODES) and logs
# these at WARNING only.
UNREACHABLE_ERRCODES = frozenset({43004, 45015, 45047})
DAILY_QUOTA_ERRCODE = 45009
ERRCODE = re.compile(r"WeChat API error (\d+)")

Intent = tuple[str, dict[str, Any]]
Router = Callable[[Engine, int, Clock], "Route | None"]
Sender = Callable[[Route, str, Mapping[str, Any]], None]
Composer = Callable[[Engine, CareMessage], Intent]
Policy = Callable[[Engine, CareMessage, Clock], "Hold | None"]


# WeChat documents a daily quota for customer-service messages (500,000 calls a day for an
# account's `message/custom/send` unless its platform page shows more; 45009 once used up), no
# per-second limit. 30/s is what the largest planned day needs (docs/care_scheduler.md, "Rate").
DEFAULT_RATE_PER_S = 30.0
DEFAULT_WORKERS = 4  # the scheduler's; measured in docs/benchmarks.md ("Care dispatch rate")


@dataclass(frozen=True)
class DispatchConfig:
    rasa_url: str
    api_token: str
    rate_per_s: float = DEFAULT_RATE_PER_S  # at most this many triggers per second, in all
    batch: int = 50  # rows claimed at once by one worker
    workers: int = 1  # threads claiming and sending concurrently (the scheduler: 4 by default)
    rasa_urls: tuple[str, ...] = ()  # Rasa replicas triggered in turn; empty: rasa_url
    backoff_base: timedelta = timedelta(minutes=1)  # first retry; doubles per attempt
    backoff_max: timedelta = timedelta(hours=6)
    unreachable_retry: timedelta = timedelta(minutes=30)  # next look for a reachable channel
    crash_at: str | None = None  # tests only: see the module docstring


OUTCOMES = ("sent", "failed", "deferred", "skipped", "lost_claims")


@dataclass
class DispatchReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0  # unreachable now, or inside the customer's quiet hours
    skipped: int = 0  # consent withdrawn since planning
    lost_claims: int = 0  # the row was reclaimed from this dispatcher: not sent, or not marked

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.deferred + self.skipped + self.lost_claims

    def add(self, other: DispatchReport) -> None:
        for name in OUTCOMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Pacer:
    """At most `rate_per_s` sends per second: each send waits for its slot. Thread-safe: the
    slots are handed out under a lock, one `1 / rate_per_s` after the other, and each thread
    sleeps for its own slot outside the lock, so any number of workers share one rate."""

    rate_per_s: float
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    next_slot: float = field(default=0.0)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def wait(self) -> None:
        with self.lock:
            now = self.monotonic()
            slot = max(self.next_slot, now)
            self.next_slot = slot + 1.0 / self.rate_per_s
        if slot > now:
            self.sleep(slot - now)


class RoundRobin:
    """The Rasa URLs in turn, one per trigger, from any thread."""

    def __init__(self, urls: tuple[str, ...]) -> None:
        if not urls:
            raise ValueError("no Rasa URL to trigger")
        self._next = itertools.cycle(urls)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            return next(self._next)


def backoff(attempts: int, base: timedelta, cap: timedelta) -> timedelta:
    """base, 2 base, 4 base, ... after the 1st, 2nd, 3rd failed attempt; never above cap."""
    return min(base * (2 ** max(attempts - 1, 0)), cap)


@functools.lru_cache(maxsize=64)
def campaign_of(engine: Engine, campaign_id: int) -> tuple[str, str]:
    """(key, consent category): they never change, so read once per process, not per message."""
    with session_scope(engine) as session:
        campaign = get_campaign_by_id(session, campaign_id=campaign_id)
    return campaign.key, campaign.category


@dataclass(frozen=True)
class Hold:
    reason: str
    until: datetime | None  # None: not at all (skipped)


def contact_hold(engine: Engine, message: CareMessage, clock: Clock) -> Hold | None:
    """Why the row may not go out now, re-checked at send time with the planner's rules.

    Planning respected consent and quiet hours, but a retry or a wait for a reachable channel
    can land inside the quiet hours (deferred to their end), and a customer can withdraw
    consent after planning (skipped). A campaign a manager switched off holds its rows: they
    wait (looked at again every 30 minutes) and go out if it is switched on again.
    """
    _, category = campaign_of(engine, message.campaign_id)
    with session_scope(engine) as session:
        enabled = get_campaign_by_id(session, campaign_id=message.campaign_id).enabled
        customer = get_customer(session, customer_id=message.customer_id)
        consents = get_consents(session, customer_id=message.customer_id)
    if not enabled:
        return Hold(CAMPAIGN_OFF, clock() + CAMPAIGN_OFF_RETRY)
    if not consents[category]:
        return Hold(NO_CONSENT, None)
    local = clock().astimezone(ZoneInfo(customer.timezone))
    allowed = defer_past_quiet_hours(local, customer.quiet_start, customer.quiet_end)
    return None if allowed == local else Hold(QUIET_HOURS, allowed.astimezone(timezone.utc))


def compose(engine: Engine, message: CareMessage) -> Intent:
    """The intent and entities that make Rasa's action compose this row's message: its
    campaign's spec names the intent (a care message, or the post-purchase survey, which also
    names the product of the order the row is about)."""
    spec = spec_for(campaign_of(engine, message.campaign_id)[0])
    entities: dict[str, Any] = {"care_message_id": message.id}
    if spec.trigger_names_product:
        entities["product"] = order_product(engine, message.period)
    return spec.intent, entities


def order_product(engine: Engine, order_id: str) -> str:
    """The order's first product, or "" when the order or its items are gone."""
    with session_scope(engine) as session:
        order = find_order(session, order_id=order_id)
    return order.items[0].name if order is not None and order.items else ""


def crash_point(point: str, config: DispatchConfig) -> None:
    if config.crash_at == point:
        log.warning("CAREBOT_CRASH_AT=%s: killing the dispatcher process", point)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


def crash_point_from_env(env: Mapping[str, str]) -> str | None:
    point = env.get("CAREBOT_CRASH_AT") or None
    if point is not None and point not in CRASH_POINTS:
        raise ValueError(f"CAREBOT_CRASH_AT must be one of {', '.join(CRASH_POINTS)}")
    return point


@dataclass
class Dispatcher:
    """One process's dispatcher; its parts are injectable so tests can stub Rasa or routing."""

    engine: Engine
    config: DispatchConfig
    clock: Clock = utcnow
    router: Router = route_for
    composer: Composer = compose
    policy: Policy = contact_hold
    sender: Sender | None = None
    pacer: Pacer | None = None
    rasa_url_for_next: Callable[[], str] = field(init=False)

    def __post_init__(self) -> None:
        self.pacer = self.pacer or Pacer(self.config.rate_per_s)
        self.rasa_url_for_next = RoundRobin(self.config.rasa_urls or (self.config.rasa_url,))

    def send(self, route: Route, intent: str, entities: Mapping[str, Any]) -> None:
        if self.sender is not None:
            self.sender(route, intent, entities)
        else:
            url = self.rasa_url_for_next()
            trigger(url, self.config.api_token, route, intent, entities)

    def run_once(self) -> DispatchReport:
        """Each worker claims one batch and handles every row of it."""
        return self._in_workers(lambda: self._run_batch(self.config.batch))

    def drain(self, max_batches: int = 1000) -> DispatchReport:
        """Batches until nothing is due (for `carebot campaigns run-once`)."""
        total = DispatchReport()
        for _ in range(max_batches):
            report = self.run_once()
            total.add(report)
            if report.handled == 0:
                break
        return total

    def run_for(self, seconds: float) -> DispatchReport:
        """Batches until nothing is due or about `seconds` have passed (the scheduler's job).

        A worker claims no more rows than it can handle in the time left, at its share of the
        rate or at the pace of its previous batch if that was slower (a busy Rasa), so the run
        ends near its time and the other rows wait unclaimed for the next run.
        """
        deadline = time.monotonic() + seconds

        def work() -> DispatchReport:
            total = DispatchReport()
            paced = max(self.config.workers, 1) / self.config.rate_per_s
            seconds_per_row = paced
            while (left := deadline - time.monotonic()) > 0:
                limit = max(1, min(self.config.batch, math.floor(left / seconds_per_row)))
                started = time.monotonic()
                report = self._run_batch(limit)
                total.add(report)
                if report.handled == 0:
                    break
                pace = (time.monotonic() - started) / report.handled
                seconds_per_row = max(paced, pace)
            return total

        return self._in_workers(work)

    def _in_workers(self, work: Callable[[], DispatchReport]) -> DispatchReport:
        """`work` in each of the configured workers (in this thread when there is one); the
        reports added up. An error that stopped a worker is raised once all have finished."""
        if self.config.workers <= 1:
            return work()
        total, errors = DispatchReport(), []
        lock = threading.Lock()

        def worker() -> None:
            try:
                report = work()
            except Exception as error:  # raised below, in the caller's thread
                with lock:
                    errors.append(error)
                return
            with lock:
                total.add(report)

        threads = [
            threading.Thread(target=worker, name=f"dispatch-{n}", daemon=True)
            for n in range(self.config.workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return total

    def _run_batch(self, limit: int) -> DispatchReport:
        """Claim up to `limit` rows and handle every one of them."""
        with session_scope(self.engine) as session:
            claimed = claim_due_messages(session, clock=self.clock, limit=limit)
        if claimed:
            crash_point("after_claim", self.config)
        report = DispatchReport()
        for message in claimed:
            self._handle(message, report)
        return report

    def _handle(self, message: CareMessage, report: DispatchReport) -> None:
        """One row; any error is recorded on that row and never stops the batch."""
        try:
            outcome = self._deliver(message)
        except Conflict:
            outcome = "lost_claims"
        except Exception as error:  # isolate one customer's failure from the batch
            log.exception("care message %s: dispatch failed", message.id)
            outcome = self._record_error(message, error)
        setattr(report, outcome, getattr(report, outcome) + 1)

    def _record_error(self, message: CareMessage, error: Exception) -> str:
        try:
            return self._finish_failed(message, f"{type(error).__name__}: {error}")
        except Conflict:
            return "lost_claims"

    def _deliver(self, message: CareMessage) -> str:
        hold = self.policy(self.engine, message, self.clock)
        if hold is not None:
            return self._hold(message, hold)
        route = self.router(self.engine, message.customer_id, self.clock)
        if route is None:
            return self._defer(message, self.clock() + self.config.unreachable_retry, UNREACHABLE)
        intent, entities = self.composer(self.engine, message)
        assert self.pacer is not None
        self.pacer.wait()
        if not self._still_held(message):
            return "lost_claims"
        try:
            self.send(route, intent, entities)
        except NotDelivered as error:
            return self._not_delivered(message, str(error))
        crash_point("after_send", self.config)
        with session_scope(self.engine) as session:
            mark_sent(
                session, message_id=message.id, claim_token=message.claim_token, clock=self.clock
            )
        return "sent"

    def _still_held(self, message: CareMessage) -> bool:
        """Renew the claim right before the send; a lost claim is somebody else's to send."""
        with session_scope(self.engine) as session:
            held = renew_claim(
                session, message_id=message.id, claim_token=message.claim_token, clock=self.clock
            )
        if not held:
            log.warning("care message %s: claim lost before sending; not sent", message.id)
        return held

    def _hold(self, message: CareMessage, hold: Hold) -> str:
        if hold.until is not None:
            return self._defer(message, hold.until, hold.reason)
        with session_scope(self.engine) as session:
            mark_skipped(
                session,
                message_id=message.id,
                reason=hold.reason,
                claim_token=message.claim_token,
                clock=self.clock,
            )
        return "skipped"

    def _defer(self, message: CareMessage, until: datetime, reason: str) -> str:
        with session_scope(self.engine) as session:
            defer_message(
                session,
                message_id=message.id,
                until=until,
                reason=reason,
                claim_token=message.claim_token,
                clock=self.clock,
            )
        return "deferred"

    def _not_delivered(self, message: CareMessage, reason: str) -> str:
        """A refusal the dispatcher handles waits; anything else fails and is retried later."""
        errcode = wechat_errcode(reason)
        if errcode in UNREACHABLE_ERRCODES:
            until = self.clock() + self.config.unreachable_retry
            log.info("care message %s waits: WeChat does not reach the customer now", message.id)
            return self._defer(message, until, f"{UNREACHABLE}: WeChat {errcode}")
        if errcode == DAILY_QUOTA_ERRCODE:
            until = next_china_midnight(self.clock())
            log.warning("care message %s waits until %s: WeChat's daily quota", message.id, until)
            return self._defer(message, until, f"{DAILY_QUOTA}: WeChat {errcode}")
        retry_at = self._retry_at(message.attempts)
        log.warning(
            "care message %s not delivered (attempt %d), retried at %s: %s",
            message.id,
            message.attempts,
            f"{retry_at:%Y-%m-%d %H:%M}Z",
            reason,
        )
        return self._finish_failed(message, reason)

    def _finish_failed(self, message: CareMessage, reason: str) -> str:
        retry_at = self._retry_at(message.attempts)
        with session_scope(self.engine) as session:
            mark_failed(
                session,
                message_id=message.id,
                reason=reason,
                claim_token=message.claim_token,
                retry_at=retry_at,
                clock=self.clock,
            )
        return "failed"

    def _retry_at(self, attempts: int) -> datetime:
        return self.clock() + backoff(attempts, self.config.backoff_base, self.config.backoff_max)


def wechat_errcode(reason: str) -> int | None:
    """WeChat's errcode named in a refusal's reason (Rasa's 500 carries the WeChat output's)."""
    found = ERRCODE.search(reason)
    return int(found.group(1)) if found else None


def next_china_midnight(now: datetime) -> datetime:
    """When WeChat's daily quotas reset: the next midnight in China, in UTC."""
    tomorrow = now.astimezone(BUSINESS_TZ).date() + timedelta(days=1)
    return business_midnight(tomorrow).astimezone(timezone.utc)
