"""The small CRM the dashboard tests count by hand (tests/crm_store/test_crm_dashboard.py).

Three customers, two agents, October 2026 (UTC) as the range, September as the period before:
every figure's expected value in the tests is worked out from the rows below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy.orm import Session

from crm_store.models import (
    AuditEntry,
    Campaign,
    CareMessage,
    Consent,
    ConsentChange,
    Conversation,
    Coupon,
    Customer,
    CustomerMetrics,
    Feedback,
    Handoff,
    Interaction,
    Offer,
    StaffUser,
    SurveyResponse,
    Ticket,
)

OCT = datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2026, 11, 1, tzinfo=timezone.utc)


def at(month: int, day: int, hour: int = 3, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Ids:
    c1: int
    c2: int
    c3: int
    s2: int  # the detractor survey with an open follow-up ticket
    ticket: int


def build(session: Session) -> Ids:
    people = _customers(session)
    agents = _staff(session)
    surveys = _surveys(session, people, agents)
    ticket = _follow_ups(session, people, surveys)
    _feedback(session, people)
    _campaigns(session, people)
    _conversations(session, people, agents)
    session.flush()
    return Ids(people[0], people[1], people[2], surveys["s2"], ticket)


def _customers(session: Session) -> list[int]:
    rows = [
        # tier, preferred channel, segment, stage, churn risk, spend, CLV
        ("金卡", "wechat", "champions", "loyal", 10, 100_000, 300_000),
        ("普通", "web", "at_risk", "churning", 70, 50_000, 60_000),
        ("普通", "wechat", "prospect", "new", 40, 0, 0),
    ]
    ids = []
    for number, (tier, channel, segment, stage, risk, spend, clv) in enumerate(rows, 1):
        customer = Customer(
            name=f"客户{number}",
            tier=tier,
            preferred_channel=channel,
            timezone="Asia/Shanghai",
            created_at=at(1, 1),
        )
        session.add(customer)
        session.flush()
        ids.append(customer.id)
        session.add(
            CustomerMetrics(
                customer_id=customer.id,
                computed_at=at(11, 1),
                frequency=0 if spend == 0 else 3,
                monetary_cents=spend,
                rfm_segment=segment,
                churn_risk=risk,
                clv_cents=clv,
                lifecycle_stage=stage,
            )
        )
    return ids


def _staff(session: Session) -> dict[str, int]:
    ids = {}
    for name in ("agent", "agent2"):
        row = StaffUser(username=name, display_name=name, role="agent", created_at=at(1, 1))
        session.add(row)
        session.flush()
        ids[name] = row.id
    return ids


def _surveys(session: Session, c: list[int], agents: dict[str, int]) -> dict[str, int]:
    agent = agents["agent"]
    rows = {
        # asked_at, channel, status, customer, agent, csat, nps, comment, themes
        "s1": (at(10, 1), "web", "answered", c[0], None, 5, 10, "物流很快，很满意", ["物流"]),
        "s2": (
            at(10, 2),
            "wechat",
            "answered",
            c[1],
            agent,
            2,
            3,
            "客服态度差，退货太慢",
            ["客服态度", "退换货"],
        ),
        "s3": (at(10, 4, 17), "wechat", "answered", c[2], None, 4, 8, None, []),
        "s4": (at(10, 10), "web", "declined", c[0], None, None, None, None, []),
        "s5": (at(10, 20), "wechat", "asked", None, None, None, None, None, []),
        "s6": (at(10, 21), "web", "answered", c[1], agent, 3, None, "价格有点贵", ["价格"]),
        "p1": (at(9, 15), "web", "answered", c[0], None, 4, 9, "物流慢", ["物流"]),
        "p2": (at(9, 16), "wechat", "answered", c[2], None, 5, 10, None, ["物流", "价格"]),
        "n1": (at(11, 1), "web", "answered", c[0], None, 1, 0, "太差了", ["售后"]),
    }
    ids = {}
    for key, (asked, channel, status, customer, staff, csat, nps, comment, themes) in rows.items():
        row = SurveyResponse(
            conversation_id=f"survey-{key}",
            trigger="end_of_chat",
            channel=channel,
            status=status,
            customer_id=customer,
            agent_id=staff,
            csat=csat,
            nps=nps,
            comment=comment,
            themes=themes,
            asked_at=asked,
            answered_at=None if status == "asked" else asked,
        )
        session.add(row)
        session.flush()
        ids[key] = row.id
    return ids


def _ticket(session: Session, customer: int, status: str, created: datetime, due: datetime) -> int:
    row = Ticket(
        customer_id=customer,
        kind="complaint",
        status=status,
        priority="high",
        subject="survey: unhappy customer",
        description="-",
        created_at=created,
        updated_at=created,
        sla_due_at=due,
    )
    session.add(row)
    session.flush()
    return row.id


def _alert(session: Session, response_id: int, ticket_id: int) -> None:
    session.add(
        AuditEntry(
            actor="survey",
            action="detractor_alert",
            entity="survey_response",
            entity_id=str(response_id),
            changes={"ticket_id": ticket_id},
            occurred_at=at(10, 2),
        )
    )


def _follow_ups(session: Session, c: list[int], surveys: dict[str, int]) -> int:
    """An open follow-up of s2, a resolved one of s6, and an open complaint of nobody's survey."""
    open_one = _ticket(session, c[1], "open", at(10, 2, 3, 5), at(10, 3, 3, 5))
    _alert(session, surveys["s2"], open_one)
    _alert(session, surveys["s6"], _ticket(session, c[1], "resolved", at(10, 21), at(10, 22)))
    _ticket(session, c[0], "open", at(10, 3), at(10, 4))
    return open_one


def _feedback(session: Session, c: list[int]) -> None:
    for text, created, polarity, themes in (
        ("安装师傅很专业", at(10, 15), "positive", ["安装"]),
        ("一般般", at(9, 20), "neutral", []),
    ):
        session.add(
            Feedback(
                customer_id=c[2],
                conversation_id="fb",
                channel="wechat",
                text=text,
                themes=themes,
                polarity=polarity,
                created_at=created,
            )
        )


def _campaigns(session: Session, c: list[int]) -> None:
    offer = Offer(
        key="wb50", name="回归礼", kind="amount_off", value=5000, valid_days=30, created_at=at(9, 1)
    )
    session.add(offer)
    session.flush()
    birthday = _campaign(session, "birthday_2026", "birthday", "care", None)
    win_back = _campaign(session, "win_back", "win_back", "offer", offer.id)
    for customer, period, channel, state, reason, sent in (
        (c[0], "2026", "wechat", "sent", None, at(10, 5, 2)),
        (c[1], "2026", "web", "failed", "errcode 45015", None),
        (c[2], "2026", "wechat", "pending", "unreachable", None),
        (c[0], "2026-b", "wechat", "pending", None, None),
        (c[1], "2026-b", "wechat", "skipped", "no_consent", None),
        (c[2], "2026-b", "wechat", "sending", None, None),
        (c[1], "2026-c", "wechat", "failed", "errcode 45015", None),
        (c[0], "2026-c", "wechat", "sent", None, at(10, 6, 2)),
    ):
        _message(session, birthday, customer, period, channel, state, reason, sent, None)
    for customer, period, state, reason, sent, outcome in (
        (c[0], "t", "sent", None, at(10, 2, 2), "returned"),
        (c[1], "t", "sent", None, at(10, 2, 3), "lapsed"),
        (c[2], "t", "sent", None, at(10, 2, 4), None),
        (c[0], "c", "skipped", "control_group", None, "lapsed"),
        (c[1], "c", "skipped", "control_group", None, "lapsed"),
        (c[2], "c", "skipped", "control_group", None, "returned"),
    ):
        _message(session, win_back, customer, period, "wechat", state, reason, sent, outcome)
    for customer, issued, redeemed in (
        (c[0], at(10, 2), at(10, 10)),
        (c[1], at(10, 2), None),
        (c[2], at(9, 1), None),
    ):
        session.add(
            Coupon(
                code=f"WB{customer}",
                offer_id=offer.id,
                customer_id=customer,
                status="redeemed" if redeemed else "issued",
                issued_at=issued,
                expires_at=at(12, 1),
                redeemed_at=redeemed,
            )
        )
    for customer, withdrawn in ((c[0], at(10, 7, 0)), (c[1], at(10, 30, 0))):
        session.add(
            Consent(
                customer_id=customer,
                category="care",
                granted=False,
                source="chat",
                updated_at=withdrawn,
            )
        )
        session.add(  # the history the opt-outs are read from (migration 0015)
            ConsentChange(
                customer_id=customer,
                category="care",
                granted=False,
                source="chat",
                channel="wechat",
                changed_at=withdrawn,
            )
        )


def _campaign(session: Session, key: str, kind: str, category: str, offer: int | None) -> int:
    row = Campaign(
        key=key,
        name=key,
        kind=kind,
        category=category,
        status="active",
        offer_id=offer,
        created_at=at(9, 1),
    )
    session.add(row)
    session.flush()
    return row.id


def _message(
    session: Session,
    campaign: int,
    customer: int,
    period: str,
    channel: str,
    state: str,
    reason: str | None,
    sent: datetime | None,
    outcome: str | None,
) -> None:
    session.add(
        CareMessage(
            customer_id=customer,
            campaign_id=campaign,
            period=period,
            channel=channel,
            state=state,
            reason=reason,
            scheduled_at=at(10, 1),
            sent_at=sent,
            created_at=at(10, 1),
            updated_at=at(10, 1),
            outcome=outcome,
            outcome_at=at(11, 1) if outcome else None,
        )
    )


def _conversations(session: Session, c: list[int], agents: dict[str, int]) -> None:
    turns = {
        # conversation: (customer, channel, started, [(speaker, text, intent, at)])
        "cv1": (
            c[0],
            "web",
            at(10, 5, 9),
            [
                ("customer", "我的订单", "order_status", at(10, 5, 10)),
                ("bot", "您的订单已发货", None, at(10, 5, 10, 1)),
                ("customer", "嗯嗯啊", "nlu_fallback", at(10, 5, 10, 1)),
            ],
        ),
        "cv2": (
            c[1],
            "wechat",
            at(10, 2, 4),
            [
                ("customer", "退货", "return_request", at(10, 2, 5)),
                ("customer", "嗯嗯啊", "nlu_fallback", at(10, 2, 5, 5)),
            ],
        ),
        "cv3": (
            c[2],
            "wechat",
            at(10, 20, 2),
            [
                ("customer", "怎么弄", "nlu_fallback", at(10, 20, 2, 59)),
            ],
        ),
        "cv4": (None, "web", at(10, 25), [("customer", "人工", "human_handoff", at(10, 25))]),
        "cv0": (c[0], "web", at(9, 10), [("customer", "嗯嗯啊", "nlu_fallback", at(9, 10))]),
    }
    for conversation, (customer, channel, started, lines) in turns.items():
        session.add(
            Conversation(
                id=conversation,
                customer_id=customer,
                channel=channel,
                started_at=started,
                last_message_at=started,
            )
        )
        session.flush()
        for speaker, text, intent, when in lines:
            session.add(
                Interaction(
                    conversation_id=conversation,
                    customer_id=customer,
                    channel=channel,
                    speaker=speaker,
                    text=text,
                    intent=intent,
                    handled_by="bot",
                    occurred_at=when,
                )
            )
    for conversation, customer, reason, agent, requested, accepted, closed in (
        (
            "cv2",
            c[1],
            "customer_request",
            "agent",
            at(10, 2, 5, 10),
            at(10, 2, 5, 15),
            at(10, 2, 5, 45),
        ),
        (
            "cv3",
            c[2],
            "fallback_streak",
            "agent2",
            at(10, 20, 3),
            at(10, 20, 3, 10),
            at(10, 20, 4, 10),
        ),
        ("cv4", None, "customer_request", None, at(10, 25, 3, 1), None, None),
    ):
        session.add(
            Handoff(
                conversation_id=conversation,
                customer_id=customer,
                queue="care",
                reason=reason,
                state="closed" if closed else "waiting",
                agent_id=agents[agent] if agent else None,
                requested_at=requested,
                accepted_at=accepted,
                closed_at=closed,
            )
        )
