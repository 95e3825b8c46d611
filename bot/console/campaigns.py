"""The managers' campaigns page: each care campaign on or off, its daily cap, and the audience of
its next planning run before anyone switches it on (docs/campaigns.md, "Who switches a campaign
on"). Every change is audited with the manager's staff id (crm_store.campaigns); only managers
(and admins) may read or change any of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sanic import Blueprint, Request, response
from sanic.response import HTTPResponse
from sqlalchemy.orm import Session

from bot.console.auth import MANAGERS, refusal, staff
from bot.console.labels import CAMPAIGN_CHANGES, CAMPAIGN_STATUSES, CHANNELS, PLAN_OUTCOMES
from crm_store.audit import AuditEntry, list_audit_entries
from crm_store.campaigns import (
    MAX_DAILY_CAP,
    Campaign,
    campaign_settings,
    get_campaign,
    set_campaign_enabled,
    set_daily_cap,
)
from crm_store.campaigns.planning import AudiencePreview, ensure_campaigns, preview_audience
from crm_store.campaigns.registry import campaign_keys
from crm_store.campaigns.rules import next_planning
from crm_store.clock import BUSINESS_TZ, Clock, fixed
from crm_store.errors import InvalidInput

campaign_pages = Blueprint("console_campaigns")

CAP_RULE = f"每日上限应为 0 到 {MAX_DAILY_CAP} 的整数，留空表示不限"
SAMPLE = 20


@dataclass(frozen=True)
class NextRun:
    at: datetime  # when the scheduler plans next (UTC)
    day: date  # the shop's day it plans

    @property
    def clock(self) -> Clock:
        return fixed(self.at)


def next_run(request: Request) -> NextRun:
    at = next_planning(request.app.ctx.desk.clock(), request.app.ctx.config.plan_at)
    return NextRun(at, at.astimezone(BUSINESS_TZ).date())


def campaigns(session: Session, clock: Clock) -> list[Campaign]:
    """The planned campaigns, the most important first (made when missing: switched off)."""
    ensure_campaigns(session, clock=clock)
    return campaign_settings(session, keys=campaign_keys())


@campaign_pages.get("/campaigns")
@staff(*MANAGERS)
async def campaigns_page(request: Request) -> HTTPResponse:
    ctx = request.app.ctx
    listed = await ctx.desk.db(lambda s: campaigns(s, ctx.desk.clock))
    return ctx.render(request, "campaigns.html", campaigns=listed, run=next_run(request))


@dataclass(frozen=True)
class Detail:
    campaign: Campaign
    preview: AudiencePreview
    changes: list[AuditEntry]


def detail(session: Session, key: str, run: NextRun, clock: Clock) -> Detail:
    ensure_campaigns(session, clock=clock)
    preview = preview_audience(
        session, campaign_key=key, day=run.day, clock=run.clock, sample=SAMPLE
    )
    changes = list_audit_entries(session, entity="campaign", entity_id=key, limit=10)
    return Detail(get_campaign(session, key=key), preview, changes)


@campaign_pages.get("/campaigns/<key:str>")
@staff(*MANAGERS)
async def campaign_page(request: Request, key: str) -> HTTPResponse:
    if key not in campaign_keys():
        return refusal(request, 404, "没有这个活动")
    ctx, run = request.app.ctx, next_run(request)
    shown = await ctx.desk.db(lambda s: detail(s, key, run, ctx.desk.clock))
    return ctx.render(
        request, "campaign.html", shown=shown, run=run, **labels(), cap_max=MAX_DAILY_CAP
    )


def labels() -> dict[str, Any]:
    return {
        "outcomes": PLAN_OUTCOMES,
        "channels": CHANNELS,
        "change_names": CAMPAIGN_CHANGES,
        "value_names": CAMPAIGN_STATUSES,
    }


@campaign_pages.post("/campaigns/<key:str>/switch")
@staff(*MANAGERS)
async def switch(request: Request, key: str) -> HTTPResponse:
    if key not in campaign_keys():
        return refusal(request, 404, "没有这个活动")
    enabled = str((request.form or {}).get("enabled") or "") == "1"
    ctx, actor = request.app.ctx, f"staff:{request.ctx.agent.id}"

    def change(session: Session) -> Campaign:
        ensure_campaigns(session, clock=ctx.desk.clock)
        return set_campaign_enabled(
            session, key=key, enabled=enabled, actor=actor, clock=ctx.desk.clock
        )

    await ctx.desk.db(change)
    return response.redirect(f"/campaigns/{key}", status=303)


def parse_cap(text: str) -> int | None:
    """The cap a form posted: empty is no cap; anything but a whole number is refused."""
    text = text.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(CAP_RULE)
    return int(text)


@campaign_pages.post("/campaigns/<key:str>/cap")
@staff(*MANAGERS)
async def cap(request: Request, key: str) -> HTTPResponse:
    if key not in campaign_keys():
        return refusal(request, 404, "没有这个活动")
    ctx, actor = request.app.ctx, f"staff:{request.ctx.agent.id}"
    try:
        daily_cap = parse_cap(str((request.form or {}).get("daily_cap") or ""))

        def change(session: Session) -> Campaign:
            ensure_campaigns(session, clock=ctx.desk.clock)
            return set_daily_cap(
                session, key=key, daily_cap=daily_cap, actor=actor, clock=ctx.desk.clock
            )

        await ctx.desk.db(change)
    except InvalidInput:
        return refusal(request, 400, CAP_RULE)
    return response.redirect(f"/campaigns/{key}", status=303)
