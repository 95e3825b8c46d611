"""Timings of the manager dashboard's figures on the demo data set, on PostgreSQL.

python -m bot.bench.dashboard_timings URL   (URL: a database the demo seed filled, e.g. 1M
customers)

The demo seed writes customers, orders, chats and surveys but no care campaigns, handoffs,
fallbacks or comments, so fill() first adds them set-based (one INSERT ... SELECT per table,
derived from the seeded rows by their ids): a handoff in one conversation of eight, a
misunderstood message in one of ten, comments on a third of the answered surveys, a follow-up
ticket for each recent detractor, a birthday greeting to one customer in five and a win-back
offer (one in ten held out) to every churning customer; then it refreshes the customer summary
and records the care messages' responses, as the scheduler does. Then each figure runs once to
warm the cache and REPEAT times per view; the median is kept.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    func,
    insert,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.clock import utcnow
from crm_store.dashboard import FIGURES, DashboardFilter, read_figure
from crm_store.dashboard.summaries import record_care_responses, refresh_customer_summary
from crm_store.db import make_engine, session_scope
from crm_store.errors import InvalidInput
from crm_store.models import (
    AuditEntry,
    Campaign,
    CareMessage,
    Conversation,
    Coupon,
    CustomerMetrics,
    Handoff,
    Interaction,
    Offer,
    StaffUser,
    SurveyResponse,
    Ticket,
)

REPEAT = 3
CAMPAIGN_KEY = "bench_birthday"
WIN_BACK_KEY = "bench_win_back"
HANDOFF_REASONS = ["customer_request", "fallback_streak", "complaint", "order_problem"]
MISUNDERSTOOD = ["嗯嗯啊", "那个东西怎么弄", "你好呀哈哈", "？？", "我要那个", "不是这个"]
COMMENTS = ["物流很快，很满意", "客服态度很好", "退货太慢了", "价格有点贵", "安装师傅很专业"]
FAILURES = ["errcode 45015: reply window closed", "errcode 43004: unsubscribed", "timeout"]
# Which figures one dashboard page shows (the console draws a page from these).
PAGES = {
    "surveys": [
        "survey-trend",
        "survey-breakdown",
        "survey-scores",
        "comments",
        "themes",
        "follow-ups",
    ],
    "campaigns": ["campaigns", "campaign-reasons", "win-back"],
    "bot": ["bot", "handoff-reasons", "misunderstood", "agents"],
    "customers": ["funnel", "segments"],
}


@dataclass(frozen=True)
class FigureTiming:
    view: str
    figure: str
    rows: int
    median_ms: float


@dataclass(frozen=True)
class DashboardBench:
    added: dict[str, int]  # rows fill() added per table
    timings: tuple[FigureTiming, ...]

    def page_ms(self, view: str, page: str) -> float:
        """A page's figures one after another, as the console reads them."""
        wanted = PAGES[page]
        return sum(t.median_ms for t in self.timings if t.view == view and t.figure in wanted)


def pick(values: list[Any], index: Any) -> Any:
    """values[index % len(values)] in SQL (PostgreSQL arrays count from 1)."""
    return array(values)[index % len(values) + 1]


def _minutes(n: Any) -> Any:
    return func.make_interval(0, 0, 0, 0, 0, n)


def _agents(session: Session) -> list[int]:
    ids = list(session.scalars(select(StaffUser.id).where(StaffUser.role == "agent")))
    if not ids:
        raise InvalidInput("the benchmark needs the demo staff (agents)")
    return sorted(ids)


def _handoffs(session: Session) -> int:
    """One conversation in eight went to an agent; one of those in ten is still waiting."""
    c = Conversation
    agents = _agents(session)
    key = func.abs(func.hashtext(c.id))
    waiting = key % 80 == 0
    accepted = c.started_at + _minutes(5)
    rows = select(
        c.id,
        c.customer_id,
        literal("care"),
        pick(HANDOFF_REASONS, key / 8),
        case((waiting, "waiting"), else_="closed"),
        case((waiting, null()), else_=pick(agents, key / 8)),
        c.started_at + _minutes(3),
        case((waiting, null()), else_=accepted),
        case((waiting, null()), else_=accepted + _minutes(5 + key % 40)),
    ).where(key % 8 == 0)
    columns = ["conversation_id", "customer_id", "queue", "reason", "state", "agent_id"]
    columns += ["requested_at", "accepted_at", "closed_at"]
    return _insert(session, Handoff, columns, rows)


def _insert(session: Session, model: Any, columns: list[str], rows: Any) -> int:
    result = session.execute(insert(model).from_select(columns, rows))
    return int(result.rowcount or 0)


def _fallbacks(session: Session) -> int:
    """A customer turn the bot did not understand in one conversation in ten."""
    c = Conversation
    key = func.abs(func.hashtext(c.id))
    rows = select(
        c.id,
        c.customer_id,
        c.channel,
        literal("customer"),
        pick(MISUNDERSTOOD, key / 10),
        literal("nlu_fallback"),
        literal(0.2),
        literal("bot"),
        c.started_at + _minutes(1),
    ).where(key % 10 == 1)
    columns = ["conversation_id", "customer_id", "channel", "speaker", "text", "intent"]
    columns += ["confidence", "handled_by", "occurred_at"]
    return _insert(session, Interaction, columns, rows)


def _survey_details(session: Session) -> int:
    """Comments on a third of the answered surveys; surveys after a handoff name its agent."""
    r = SurveyResponse
    comment = update(r).where(r.status == "answered", r.id % 3 == 0)
    unsynced = {"synchronize_session": False}  # no ORM objects are loaded
    session.execute(comment.values(comment=pick(COMMENTS, r.id / 3)), execution_options=unsynced)
    agent = select(Handoff.agent_id).where(Handoff.conversation_id == r.conversation_id)
    handed = update(r).where(agent.exists()).values(agent_id=agent.limit(1).scalar_subquery())
    return int(session.execute(handed, execution_options=unsynced).rowcount or 0)


def _follow_ups(session: Session, now: datetime) -> int:
    """An open follow-up ticket, with its audit link, for each detractor of the last 90 days."""
    r = SurveyResponse
    detractor = and_(
        r.status == "answered",
        r.customer_id.is_not(None),
        r.asked_at >= now - timedelta(days=90),
        (r.csat <= 2) | (r.nps <= 6),
    )
    tickets = select(
        r.customer_id,
        literal("complaint"),
        literal("open"),
        literal("high"),
        literal("survey #") + cast(r.id, String),
        func.coalesce(r.comment, "-"),
        r.asked_at,
        r.asked_at,
        r.asked_at + func.make_interval(0, 0, 0, 0, 24),
    ).where(detractor)
    columns = ["customer_id", "kind", "status", "priority", "subject", "description"]
    added = _insert(session, Ticket, columns + ["created_at", "updated_at", "sla_due_at"], tickets)
    t = Ticket
    links = select(
        literal("survey"),
        literal("detractor_alert"),
        literal("survey_response"),
        func.substr(t.subject, 9),
        func.json_build_object("ticket_id", t.id),
        t.created_at,
    ).where(t.subject.like("survey #%"))
    columns = ["actor", "action", "entity", "entity_id", "changes", "occurred_at"]
    _insert(session, AuditEntry, columns, links)
    return added


def _campaigns(session: Session, now: datetime) -> int:
    offer = Offer(
        key="bench_wb", name="回归礼", kind="amount_off", value=5000, valid_days=30, created_at=now
    )
    session.add(offer)
    session.flush()
    birthday = Campaign(
        key=CAMPAIGN_KEY,
        name="生日祝福",
        kind="birthday",
        category="care",
        status="active",
        created_at=now,
    )
    win_back = Campaign(
        key=WIN_BACK_KEY,
        name="老客召回",
        kind="win_back",
        category="offer",
        status="active",
        offer_id=offer.id,
        created_at=now,
    )
    session.add_all([birthday, win_back])
    session.flush()
    return _birthday_messages(session, birthday.id, now) + _win_back_messages(
        session, win_back.id, offer.id, now
    )


def _message_columns() -> list[str]:
    return [
        "customer_id",
        "campaign_id",
        "period",
        "channel",
        "state",
        "attempts",
        "reason",
        "scheduled_at",
        "sent_at",
        "created_at",
        "updated_at",
        "outcome",
        "outcome_at",
    ]


def _birthday_messages(session: Session, campaign: int, now: datetime) -> int:
    """One customer in five over the last year: 85% sent, 5% failed, 5% deferred, 5% skipped."""
    m = CustomerMetrics
    slot = m.customer_id % 100
    created = literal(now) - func.make_interval(0, 0, 0, m.customer_id % 365)
    state = case(
        (slot < 85, "sent"), (slot < 90, "failed"), (slot < 95, "pending"), else_="skipped"
    )
    reason = case(
        (slot < 85, null()),
        (slot < 90, pick(FAILURES, m.customer_id)),
        (slot < 95, "unreachable"),
        else_="no_consent",
    )
    rows = select(
        m.customer_id,
        literal(campaign),
        literal("2026"),
        case((m.customer_id % 3 == 0, "web"), else_="wechat"),
        state,
        literal(1),
        reason,
        created,
        case((slot < 85, created + _minutes(30)), else_=null()),
        created,
        created,
        null(),
        null(),
    ).where(m.customer_id % 5 == 0)
    return _insert(session, CareMessage, _message_columns(), rows)


def _win_back_messages(session: Session, campaign: int, offer: int, now: datetime) -> int:
    """Every churning customer; one in ten held out; outcomes known after 30 days."""
    m = CustomerMetrics
    control = m.customer_id % 10 == 0
    created = literal(now) - func.make_interval(0, 0, 0, m.customer_id % 120)
    measured = created < literal(now) - func.make_interval(0, 0, 0, 30)
    returned = m.customer_id % 7 < case((control, 1), else_=2)
    outcome = case((measured & returned, "returned"), (measured, "lapsed"), else_=null())
    rows = select(
        m.customer_id,
        literal(campaign),
        literal("2026"),
        literal("wechat"),
        case((control, "skipped"), else_="sent"),
        literal(1),
        case((control, "control_group"), else_=null()),
        created,
        case((control, null()), else_=created + _minutes(30)),
        created,
        created,
        outcome,
        case((measured, created + func.make_interval(0, 0, 0, 30)), else_=null()),
    ).where(m.lifecycle_stage == "churning")
    added = _insert(session, CareMessage, _message_columns(), rows)
    c = CareMessage
    coupons = select(
        literal("B") + cast(c.customer_id, String),
        literal(offer),
        c.customer_id,
        case((c.outcome == "returned", "redeemed"), else_="issued"),
        c.sent_at,
        c.sent_at + func.make_interval(0, 0, 0, 30),
        case((c.outcome == "returned", c.sent_at + func.make_interval(0, 0, 0, 10)), else_=null()),
    ).where(c.campaign_id == campaign, c.state == "sent")
    columns = ["code", "offer_id", "customer_id", "status", "issued_at", "expires_at"]
    _insert(session, Coupon, columns + ["redeemed_at"], coupons)
    return added


def fill(engine: Engine, *, now: datetime | None = None) -> dict[str, int]:
    """Add what the dashboard reads and the demo seed does not write; rows per table."""
    if engine.dialect.name != "postgresql":
        raise InvalidInput("the dashboard benchmark generates its rows with PostgreSQL functions")
    moment = (now or utcnow()).replace(tzinfo=None)
    with session_scope(engine) as session:
        if session.scalar(select(Campaign.id).where(Campaign.key == CAMPAIGN_KEY)) is not None:
            raise InvalidInput("the dashboard benchmark rows are there already")
        added = {"handoffs": _handoffs(session), "interactions": _fallbacks(session)}
        added["survey_responses (agent set)"] = _survey_details(session)
        added["tickets"] = _follow_ups(session, moment)
        added["care_messages"] = _campaigns(session, moment)
    with session_scope(engine) as session:  # what the scheduler does after the analytics
        added["customer_summary"] = refresh_customer_summary(session)
        added["care_messages (responses recorded)"] = record_care_responses(session)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")  # no SQLAlchemy construct for it
    return added


def views(now: datetime) -> dict[str, DashboardFilter]:
    """The filters a manager uses most: the default quarter, a year, and narrowed quarters."""
    quarter = now - timedelta(days=90)
    year = now - timedelta(days=365)
    return {
        "90 days": DashboardFilter(since=quarter, until=now),
        "365 days": DashboardFilter(since=year, until=now),
        "90 days, 金卡 champions": DashboardFilter(
            since=quarter, until=now, tier="金卡", segment="champions"
        ),
        "90 days, wechat, agent": DashboardFilter(
            since=quarter, until=now, channel="wechat", agent="agent"
        ),
    }


def median_ms(engine: Engine, read: Callable[[Session], list[Any]]) -> tuple[float, int]:
    """One warm-up run, then the median of REPEAT runs, each in its own transaction."""
    timings, rows = [], 0
    for _ in range(REPEAT + 1):
        with session_scope(engine) as session:
            started = time.perf_counter()
            rows = len(read(session))
            timings.append(time.perf_counter() - started)
    return round(statistics.median(timings[1:]) * 1000, 1), rows


def time_views(engine: Engine, *, now: datetime | None = None) -> tuple[FigureTiming, ...]:
    moment = now or utcnow()
    timings = []
    for view, f in views(moment).items():
        for name in FIGURES:
            ms, rows = median_ms(engine, partial(read_figure, name=name, f=f))
            timings.append(FigureTiming(view, name, rows, ms))
    return tuple(timings)


def run(engine: Engine, *, now: datetime | None = None) -> DashboardBench:
    return DashboardBench(fill(engine, now=now), time_views(engine, now=now))


def run_on_postgresql(engine: Engine) -> DashboardBench | None:
    """The benchmark where its rows can be generated (PostgreSQL), else None."""
    return run(engine) if engine.dialect.name == "postgresql" else None


def main() -> None:
    engine = make_engine(sys.argv[1])
    try:
        result = run(engine)
    finally:
        engine.dispose()
    print(result.added)
    for timing in result.timings:
        print(f"{timing.view:28} {timing.figure:18} {timing.rows:6} {timing.median_ms:8.1f} ms")


if __name__ == "__main__":
    main()
