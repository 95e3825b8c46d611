"""Campaign planning, set-based: who is due on a day, written to the outbox under the budget.

`plan_campaigns` is the one planning loop: every campaign of the registry (registry.REGISTRY),
the most important first, each planned by `plan_campaign`, a campaign that is switched off not
at all. `plan_day` (one transaction), the care scheduler's plan job and `carebot campaigns
run-once` (a transaction per campaign) all go through it.
`plan_campaign` plans a campaign that is on (a manager switches it: crm_store.campaigns.rows):
it runs the pipeline (pipeline.py) on the campaign's candidates (its spec's query,
catalogue/) once into a temporary table, counts the outcomes there and writes the day's rows
in one INSERT ... SELECT ... ON CONFLICT DO NOTHING (rows to send `pending`, the control group
`skipped`/`control_group`), then issues their coupons (coupons.py). Rows not written are
planned again on a later day if the campaign's rule still holds.
`preview_campaign` and `preview_audience` run the same pipeline, on or off, and write nothing.

The pure twins of these rules (test oracles) live in tests/oracles/campaigns/ and
tests/oracles/budget.py; the tests check on a fixture of customers that both answer alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from crm_store.campaigns.coupons import ensure_offers, issue_coupons
from crm_store.campaigns.pipeline import (
    OUTCOMES,
    PREVIEW,
    PREVIEW_COLUMNS,
    materialize_outcomes,
    materialize_preview,
    run_pipeline,
    write_rows,
)
from crm_store.campaigns.registry import REGISTRY, campaign_keys, find_spec
from crm_store.campaigns.rows import (
    OFF,
    ON,
    Campaign,
    create_campaign,
    find_campaign,
    is_running,
    switched_off,
)
from crm_store.campaigns.rules import PlanSettings
from crm_store.clock import Clock, utcnow

SEND = "send"
# A new installation's campaigns: off, and at most this many messages a day each once a manager
# switches one on without choosing a cap (docs/campaigns.md).
DEFAULT_DAILY_CAP = 100
# No cap on any campaign: the benchmarks and the tests of the rules themselves.
NO_DAILY_CAPS: dict[str, int | None] = {spec.key: None for spec in REGISTRY}
# plan_campaign's signature: (session, *, campaign_key, day, clock) -> its result
Planner = Callable[..., Any]
Transaction = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class PlanResult:
    planned: int  # pending rows written, due at the campaign's send time
    deferred: int  # pending rows written, due later because of the customer's quiet hours
    skipped_by_reason: dict[str, int]  # candidates not sent: control_group rows are written


@dataclass(frozen=True)
class PreviewRow:
    customer_id: int
    name: str
    period: str
    channel: str
    scheduled_at: datetime
    outcome: str  # "send" or the reason it is not sent
    detail: str | None  # the gift, offer or product the message is about


def ensure_campaigns(
    session: Session,
    *,
    clock: Clock = utcnow,
    enabled: bool = False,
    daily_caps: Mapping[str, int | None] | None = None,
) -> list[Campaign]:
    """Every registered campaign's row, and the offers made with it, created when missing.

    A campaign created here is off unless `enabled` (a new installation sends nothing until a
    manager switches a campaign on), with its cap from `daily_caps` (default DEFAULT_DAILY_CAP;
    None: no cap). Existing rows are left as their owner set them.
    """
    caps = {} if daily_caps is None else daily_caps
    campaigns = []
    for spec in REGISTRY:
        found = find_campaign(session, key=spec.key)
        campaigns.append(
            found
            or create_campaign(
                session,
                key=spec.key,
                name=spec.name,
                kind=spec.kind,
                category=spec.category,
                status=ON if enabled else OFF,
                daily_cap=caps.get(spec.key, DEFAULT_DAILY_CAP),
                clock=clock,
            )
        )
        if spec.coupons is not None and spec.coupons.made_with_campaign:
            ensure_offers(session, spec.coupons, spec.coupons.period(clock().date()), clock)
    return campaigns


def planned_campaign_keys() -> list[str]:
    """The keys planning knows, the most important first (the order plan_day plans them)."""
    return campaign_keys()


def plan_campaign(
    session: Session,
    *,
    campaign_key: str,
    day: date,
    clock: Clock = utcnow,
    settings: PlanSettings | None = None,
) -> PlanResult:
    """Write the day's outbox rows of one campaign (idempotent: a second run adds nothing)."""
    settings, now = settings or PlanSettings(), clock()
    spec, campaign = find_spec(campaign_key), find_campaign(session, key=campaign_key)
    candidates = spec.candidates(day, now, settings) if spec else None
    if spec is None or campaign is None or not is_running(campaign, now) or candidates is None:
        return PlanResult(0, 0, {})
    final, slot, deferred = run_pipeline(session, campaign, spec, candidates, day, now, settings)
    outcomes = materialize_outcomes(session, final, slot, deferred)
    census = session.execute(
        select(outcomes.c.reason, outcomes.c.deferred, func.count()).group_by(
            outcomes.c.reason, outcomes.c.deferred
        )
    ).all()
    write_rows(session, campaign, outcomes, now)
    issue_coupons(session, campaign, spec, outcomes, day, now)
    OUTCOMES.drop(session.connection())
    return _result(census)


def plan_campaigns(
    transaction: Transaction,
    *,
    day: date,
    clock: Clock = utcnow,
    keys: Sequence[str] | None = None,
    planner: Planner = plan_campaign,
    on_error: Callable[[str, Exception], None] | None = None,
) -> list[tuple[str, Any]]:
    """The one planning loop: (key, result) for every campaign (`keys`, default the registry's),
    the most important first, so it takes a customer's budget first; a campaign switched off
    is not planned and its result is None.

    Each campaign is planned in a `transaction()` of its own. With `on_error`, a campaign whose
    planning fails is reported there (and left out of the results) and the rest are planned;
    without, the error propagates.
    """
    keys = campaign_keys() if keys is None else list(keys)
    with transaction() as session:
        off = set(switched_off(session, keys=keys))
    results: list[tuple[str, Any]] = []
    for key in keys:
        if key in off:
            results.append((key, None))
            continue
        try:
            with transaction() as session:
                results.append((key, planner(session, campaign_key=key, day=day, clock=clock)))
        except Exception as error:  # one campaign's failure must not stop the others
            if on_error is None:
                raise
            on_error(key, error)
    return results


def plan_day(
    session: Session, *, day: date, clock: Clock = utcnow, settings: PlanSettings | None = None
) -> dict[str, PlanResult]:
    """Every campaign for `day` in this session, the most important first (plan_campaigns)."""
    planner = partial(plan_campaign, settings=settings)
    results = plan_campaigns(lambda: nullcontext(session), day=day, clock=clock, planner=planner)
    return {key: result or PlanResult(0, 0, {}) for key, result in results}


def preview_campaign(
    session: Session,
    *,
    campaign_key: str,
    day: date,
    clock: Clock = utcnow,
    settings: PlanSettings | None = None,
    limit: int | None = 100,
) -> list[PreviewRow]:
    """Who would get what on `day` (and who would not, and why); writes nothing."""
    settings, now = settings or PlanSettings(), clock()
    spec, campaign = find_spec(campaign_key), find_campaign(session, key=campaign_key)
    candidates = spec.candidates(day, now, settings) if spec else None
    if spec is None or campaign is None or candidates is None:
        return []
    final, slot, _ = run_pipeline(session, campaign, spec, candidates, day, now, settings)
    query = select(
        final.c.customer_id,
        final.c.name,
        final.c.period,
        final.c.channel,
        slot,
        func.coalesce(final.c.reason, SEND),
        final.c.detail,
    ).order_by(final.c.customer_id, final.c.rank, final.c.period)
    return [PreviewRow(*row) for row in session.execute(query.limit(limit))]


@dataclass(frozen=True)
class AudiencePreview:
    """Who a campaign's planning run on `day` would reach, before anyone switches it on."""

    day: date
    outcomes: dict[str, int]  # "send", or the reason a candidate gets nothing -> candidates
    sample: list[PreviewRow]  # the first who would get a message, in the order the cap takes

    @property
    def sending(self) -> int:
        return self.outcomes.get(SEND, 0)


def preview_audience(
    session: Session,
    *,
    campaign_key: str,
    day: date,
    clock: Clock = utcnow,
    settings: PlanSettings | None = None,
    sample: int = 20,
) -> AudiencePreview:
    """The census and a sample of a planning run on `day`, on or off, cap applied; the day's
    candidates go through the pipeline once, into a temporary table (nothing else is written)."""
    settings, now = settings or PlanSettings(), clock()
    spec, campaign = find_spec(campaign_key), find_campaign(session, key=campaign_key)
    candidates = spec.candidates(day, now, settings) if spec else None
    if spec is None or campaign is None or candidates is None:
        return AudiencePreview(day, {}, [])
    final, slot, _ = run_pipeline(session, campaign, spec, candidates, day, now, settings)
    table = materialize_preview(session, final, slot)
    outcome = func.coalesce(table.c.reason, SEND)
    census = session.execute(select(outcome, func.count()).group_by(outcome)).all()
    first = (
        select(*(table.c[name] for name in PREVIEW_COLUMNS), literal(SEND), table.c.detail)
        .where(table.c.reason.is_(None))
        .order_by(table.c.place)
        .limit(sample)
    )
    rows = [PreviewRow(*row) for row in session.execute(first)]
    PREVIEW.drop(session.connection())
    return AudiencePreview(day, {reason: int(count) for reason, count in census}, rows)


def _result(census: Iterable[Any]) -> PlanResult:
    planned = deferred = 0
    skipped: dict[str, int] = {}
    for reason, was_deferred, count in census:
        if reason is None and was_deferred:
            deferred += count
        elif reason is None:
            planned += count
        else:
            skipped[reason] = skipped.get(reason, 0) + count
    return PlanResult(planned, deferred, skipped)
