"""The CRM side of the scripted conversations: a fresh member made for a conversation (through
crm_store's typed functions, in the running system's database) and typed reads of what the
conversation left there, compared with the script's `crm:` expectations."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_store.audit import list_audit_entries
from crm_store.clock import fixed
from crm_store.customers import create_customer, get_consents, get_customer
from crm_store.db import make_engine, session_scope
from crm_store.errors import NotFound
from crm_store.feedback import list_feedback
from crm_store.identities import link_identity, list_identities
from crm_store.interactions import conversation_id_for, get_conversation, list_interactions
from crm_store.models import Handoff as HandoffRow
from crm_store.models import PointsEntry as PointsRow
from crm_store.models import SurveyResponse as SurveyRow
from crm_store.offers import create_offer, get_offer, get_offer_by_id, list_coupons
from crm_store.orders import (
    NewItem,
    Order,
    add_shipping_event,
    create_order,
    set_order_status,
)
from crm_store.points import earn_points, list_points_entries, points_balance
from crm_store.surveys import ask_survey, record_survey_response
from crm_store.tickets import list_tickets, open_ticket

SHOP_ZONE = ZoneInfo("Asia/Shanghai")
PHONE_PREFIX = "166"  # no demo customer's prefix (crm_store/demo/customers.py PHONE_PREFIXES)
_used_tails: set[str] = set()


@contextmanager
def crm_session(database_url: str) -> Iterator[Session]:
    """One transaction on the running system's CRM database."""
    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def a_phone() -> str:
    """A mobile number nobody has, whose masked form (166****1234) is this run's only one."""
    while True:
        number = uuid.uuid4().int
        tail = f"{number % 10_000:04d}"
        if tail not in _used_tails:
            _used_tails.add(tail)
            return f"{PHONE_PREFIX}{number // 10_000 % 10_000:04d}{tail}"


def masked(phone: str) -> str:
    return f"{phone[:3]}****{phone[-4:]}"


def long_day(day: date) -> str:
    """A date as the bot writes a warranty's end: 2027年8月25日."""
    return f"{day.year}年{day.month}月{day.day}日"


def local_day(moment: datetime) -> str:
    """A day as the bot writes it: 12月3日 (Shanghai)."""
    local = moment.astimezone(SHOP_ZONE)
    return f"{local.month}月{local.day}日"


@dataclass
class Member:
    """A customer made for one conversation, and what the script may refer to."""

    id: int
    name: str
    phone: str
    orders: dict[str, str] = field(default_factory=dict)  # script key -> order id
    expiries: dict[str, datetime] = field(default_factory=dict)  # points key -> expires_at
    warranties: dict[str, date] = field(default_factory=dict)  # order key -> its first item's
    last_points_entry: int = 0  # the ledger's newest id when the member was made


def make_member(
    session: Session, spec: Mapping[str, Any], *, channel: str, sender: str, now: datetime
) -> Member:
    """The member the script's `member:` describes; linked to the sender unless `linked: false`."""
    phone = a_phone()
    customer = create_customer(
        session,
        name=str(spec.get("name") or "林小雨"),
        phone=phone,
        tier=str(spec.get("tier") or "普通"),
        preferred_channel="wechat" if channel == "wechat" else "web",
        consents=dict(spec.get("consents") or {}),
        clock=fixed(now - timedelta(days=400)),
    )
    member = Member(customer.id, customer.name, phone)
    if spec.get("linked", True):
        kind = "wechat_openid" if channel == "wechat" else "rest_user"
        link_identity(session, customer_id=customer.id, kind=kind, value=sender)
    for order in spec.get("orders") or ():
        made = make_order(session, customer.id, order, now)
        member.orders[str(order["key"])] = made.id
        if made.items[0].warranty_ends_on is not None:
            member.warranties[str(order["key"])] = made.items[0].warranty_ends_on
    for grant in spec.get("points") or ():
        earned = now - timedelta(days=float(grant.get("days_ago", 0)))
        entry = earn_points(
            session,
            customer_id=customer.id,
            points=int(grant["points"]),
            reason="conversation test",
            clock=fixed(earned),
        )
        if "key" in grant:
            assert entry.expires_at is not None
            member.expiries[str(grant["key"])] = entry.expires_at
    for ticket in spec.get("tickets") or ():
        open_ticket(
            session,
            customer_id=customer.id,
            kind=str(ticket.get("kind", "complaint")),
            subject=str(ticket["subject"]),
            description=str(ticket["subject"]),
            priority=str(ticket.get("priority", "normal")),
            clock=fixed(now - timedelta(hours=float(ticket.get("hours_ago", 1)))),
        )
    if "surveyed_days_ago" in spec:
        a_past_survey(session, customer.id, now - timedelta(days=float(spec["surveyed_days_ago"])))
    member.last_points_entry = int(session.scalar(select(func.max(PointsRow.id))) or 0)
    return member


def another_member(session: Session) -> Member:
    """A second member, whose number the conversation's member may try to take."""
    customer = create_customer(session, name="别人", phone=a_phone())
    assert customer.phone is not None
    return Member(customer.id, customer.name, customer.phone)


def make_order(session: Session, customer_id: int, spec: Mapping[str, Any], now: datetime) -> Order:
    placed = now - timedelta(days=float(spec.get("placed_days_ago", 1)))
    order = create_order(
        session,
        customer_id=customer_id,
        items=[NewItem(str(sku)) for sku in spec["items"]],
        clock=fixed(placed),
    )
    carrier = spec.get("carrier")
    for index, event in enumerate(spec.get("shipping") or ()):
        add_shipping_event(
            session,
            order_id=order.id,
            status=str(event["status"]),
            location=event.get("location"),
            carrier=str(carrier) if carrier and index == 0 else None,
            clock=fixed(now - timedelta(days=float(event["days_ago"]))),
        )
    status = str(spec.get("status", "paid"))
    if status != order.status:
        set_order_status(session, order_id=order.id, status=status)
    return order


def a_past_survey(session: Session, customer_id: int, asked_at: datetime) -> None:
    """An answered survey (with NPS) in another conversation, for the fatigue rules."""
    conversation = f"earlier-{uuid.uuid4().hex[:12]}"
    ask_survey(
        session,
        conversation_id=conversation,
        trigger="end_of_chat",
        channel="web",
        customer_id=customer_id,
        clock=fixed(asked_at),
    )
    record_survey_response(
        session,
        conversation_id=conversation,
        trigger="end_of_chat",
        channel="web",
        csat=4,
        nps=8,
        customer_id=customer_id,
        clock=fixed(asked_at),
    )


def ensure_offers(session: Session, offers: Sequence[Mapping[str, Any]]) -> None:
    """Offers shared by every conversation (an offer is the same for everyone), made once."""
    for offer in offers:
        try:
            get_offer(session, key=str(offer["key"]))
        except NotFound:
            create_offer(
                session,
                key=str(offer["key"]),
                name=str(offer["name"]),
                kind=str(offer.get("kind", "amount_off")),
                value=int(offer["value"]),
                valid_days=int(offer.get("valid_days", 30)),
                min_spend_cents=int(offer.get("min_spend_cents", 0)),
            )


# ---------------------------------------------------------------------------------------------
# What the conversation left in the CRM, as plain rows to compare


def tickets_of(session: Session, customer_id: int) -> list[dict[str, Any]]:
    tickets = sorted(list_tickets(session, customer_id=customer_id), key=lambda t: t.id)
    return [
        {
            "kind": t.kind,
            "status": t.status,
            "priority": t.priority,
            "order_id": t.order_id,
            "subject": t.subject,
            "description": t.description,
        }
        for t in tickets
    ]


def points_of(session: Session, member: Member) -> dict[str, Any]:
    entries = list_points_entries(session, customer_id=member.id)
    return {
        "balance": points_balance(session, customer_id=member.id),
        "new": [
            {"kind": e.kind, "delta": e.delta, "reason": e.reason}
            for e in sorted(entries, key=lambda e: e.id)
            if e.id > member.last_points_entry
        ],
    }


def coupons_of(session: Session, customer_id: int) -> list[dict[str, Any]]:
    coupons = sorted(list_coupons(session, customer_id=customer_id), key=lambda c: c.id)
    return [
        {
            "offer": get_offer_by_id(session, offer_id=c.offer_id).key,
            "status": c.status,
            "code": c.code,
            "order_id": c.order_id,
        }
        for c in coupons
    ]


def survey_responses_of(session: Session, conversation_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(SurveyRow).where(SurveyRow.conversation_id == conversation_id).order_by(SurveyRow.id)
    )
    return [
        {
            "trigger": r.trigger,
            "channel": r.channel,
            "status": r.status,
            "csat": r.csat,
            "nps": r.nps,
            "comment": r.comment,
            "customer_id": r.customer_id,
        }
        for r in rows
    ]


def handoffs_of(session: Session, conversation_id: str) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(HandoffRow)
        .where(HandoffRow.conversation_id == conversation_id)
        .order_by(HandoffRow.id)
    )
    return [
        {"state": r.state, "reason": r.reason, "queue": r.queue, "customer_id": r.customer_id}
        for r in rows
    ]


def interactions_of(session: Session, conversation_id: str) -> dict[str, Any]:
    turns = list_interactions(session, conversation_id=conversation_id)
    customer = [t for t in turns if t.speaker == "customer"]
    return {
        "texts": [t.text for t in customer],
        "intents": [t.intent for t in customer],
        "channels": sorted({t.channel for t in turns}),
        "bot_turns": sum(t.speaker == "bot" for t in turns),
    }


def feedback_of(session: Session, conversation_id: str) -> list[dict[str, Any]]:
    rows = [f for f in list_feedback(session, limit=1000) if f.conversation_id == conversation_id]
    return [
        {"text": f.text, "polarity": f.polarity, "themes": list(f.themes), "channel": f.channel}
        for f in sorted(rows, key=lambda f: f.id)
    ]


def identities_of(session: Session, customer_id: int) -> list[dict[str, Any]]:
    return [
        {"kind": i.kind, "value": i.value}
        for i in list_identities(session, customer_id=customer_id)
    ]


def conversation_of(session: Session, conversation_id: str) -> dict[str, Any] | None:
    try:
        found = get_conversation(session, conversation_id=conversation_id)
    except NotFound:
        return None
    return {"customer_id": found.customer_id, "channel": found.channel}


def audit_of(session: Session, customer_id: int) -> list[dict[str, Any]]:
    entries = list_audit_entries(session, entity="customer", entity_id=customer_id)
    return [
        {"actor": e.actor, "action": e.action, "changes": e.changes}
        for e in sorted(entries, key=lambda e: e.id)
    ]


def consents_of(session: Session, customer_id: int) -> dict[str, bool]:
    return get_consents(session, customer_id=customer_id)


def phone_of(session: Session, customer_id: int) -> str | None:
    return get_customer(session, customer_id=customer_id).phone


def crm_conversation_id(channel: str, sender: str) -> str:
    """The CRM's id of a conversation: the REST channel's senders live under `rest:`."""
    return conversation_id_for(f"rest:{sender}" if channel == "rest" else sender)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# ---------------------------------------------------------------------------------------------
# Comparing


def row_mismatch(actual: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """The fields of `expected` that `actual` does not have: `x: v` is equality, `x_contains: v`
    a substring (or, for a list, a member), `x_absent: v` the opposite."""
    problems = []
    for key, want in expected.items():
        if key.endswith("_contains"):
            name = key.removesuffix("_contains")
            if want not in (actual.get(name) or ""):
                problems.append(f"{name} {actual.get(name)!r} lacks {want!r}")
        elif key.endswith("_absent"):
            name = key.removesuffix("_absent")
            if want in (actual.get(name) or ""):
                problems.append(f"{name} {actual.get(name)!r} has {want!r}")
        elif key not in actual:
            problems.append(f"no field {key} (fields: {sorted(actual)})")
        elif actual[key] != want:
            problems.append(f"{key} is {actual[key]!r}, not {want!r}")
    return problems


def rows_mismatch(
    actual: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, Any]]
) -> str | None:
    """Why the rows are not the expected ones (same number, in order), or None."""
    problems = (
        [] if len(actual) == len(expected) else [f"{len(actual)} rows, {len(expected)} expected"]
    )
    for index, (row, want) in enumerate(zip(actual, expected, strict=False)):
        problems += [f"row {index + 1}: {p}" for p in row_mismatch(row, want)]
    return "; ".join(problems) + f"\n  rows: {list(actual)}" if problems else None
