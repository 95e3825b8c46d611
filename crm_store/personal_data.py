"""One member's personal data: erased on request, exported on request, kept only as long as
needed (issue 15, PIPL; docs/personal-data.md says what is kept where and for how long).

- `erasure_targets` lists the conversations a member's data lives in (the CRM's, and the Rasa
  sender ids the caller must erase from Rasa's tracker store, which the CRM does not own).
- `forget_customer` erases everything in the CRM that names the member or holds their words,
  and keeps what the dashboard counts: the customer row stays as an anonymous tombstone
  (`erased_at`), so orders, points, survey scores, turns, segments and campaign rows keep
  their customer and every aggregate is unchanged.
- `export_customer` is everything held about one member as one JSON-ready document.
- `apply_retention` deletes or anonymises what is older than the configured periods.

Like every crm_store function, these never commit: the caller owns the transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from crm_store.audit import record_audit
from crm_store.clock import Clock, utcnow
from crm_store.errors import NotFound
from crm_store.interactions import conversation_id_for
from crm_store.login_codes import purge_login_codes
from crm_store.models import (
    AuditEntry,
    CareDelivery,
    CareMessage,
    ChannelIdentity,
    Consent,
    ConsentChange,
    Conversation,
    Coupon,
    Customer,
    Feedback,
    Handoff,
    HandoffNote,
    Interaction,
    LoginCode,
    Order,
    OrderItem,
    PointsEntry,
    ShippingEvent,
    SurveyResponse,
    Ticket,
    WebChatMessage,
    WebChatPresence,
)

ERASED_NAME = "已删除用户"
ERASED_TEXT = "[已删除]"
ERASED_PREFIX = "erased:"
REST_PREFIX = "rest:"
# Identity kinds whose value is a Rasa sender id of the member's conversations.
SENDER_KINDS = ("web_user", "web_session", "wechat_openid")


@dataclass(frozen=True)
class ErasureTargets:
    """Where one member's conversations are: CRM conversation ids, the Rasa sender ids whose
    trackers hold them, and their WeChat OpenIDs (the simulator's records in the demo)."""

    customer_id: int
    conversation_ids: frozenset[str]
    sender_ids: frozenset[str]
    openids: frozenset[str]


@dataclass(frozen=True)
class ErasureResult:
    customer_id: int
    counts: dict[str, int] = field(default_factory=dict)


def _run(session: Session, statement: Any) -> int:
    """A bulk UPDATE or DELETE; rows already loaded in the session are brought up to date."""
    result = session.execute(statement, execution_options={"synchronize_session": "fetch"})
    return int(result.rowcount or 0)


def _customer_row(session: Session, customer_id: int) -> Customer:
    row = session.get(Customer, customer_id)
    if row is None:
        raise NotFound(f"no customer {customer_id}")
    return row


def erasure_targets(session: Session, *, customer_id: int) -> ErasureTargets:
    """The member's conversations, found through every link the CRM keeps: conversations and
    handoffs attached to them, and the channel identities that are conversation ids."""
    _customer_row(session, customer_id)
    identities = session.execute(
        select(ChannelIdentity.kind, ChannelIdentity.value).where(
            ChannelIdentity.customer_id == customer_id
        )
    ).all()
    senders = {value for kind, value in identities if kind in SENDER_KINDS}
    senders |= {REST_PREFIX + value for kind, value in identities if kind == "rest_user"}
    senders |= set(
        session.scalars(
            select(Handoff.sender_id).where(
                Handoff.customer_id == customer_id, Handoff.sender_id.is_not(None)
            )
        )
    )
    conversations = set(
        session.scalars(select(Conversation.id).where(Conversation.customer_id == customer_id))
    )
    conversations |= {conversation_id_for(sender) for sender in senders}
    senders |= {c for c in conversations if not c.startswith(("sha256:", ERASED_PREFIX))}
    openids = {value for kind, value in identities if kind == "wechat_openid"}
    return ErasureTargets(
        customer_id, frozenset(conversations), frozenset(senders), frozenset(openids)
    )


def forget_customer(
    session: Session,
    *,
    customer_id: int,
    actor: str,
    targets: ErasureTargets | None = None,
    clock: Clock = utcnow,
) -> ErasureResult:
    """Erase a member's personal data from the CRM (Rasa's trackers are the caller's: see
    `bot/privacy.py`). What stays is what counts, not what names: the customer row without
    name, phone, e-mail or birthday; orders, points and coupons (bookkeeping); survey scores
    and themes; turns without their text; handoffs and tickets without their words. Consents
    become withdrawn so nothing is sent to the tombstone; the consent history (the proof of
    what was agreed when) stays. The audit log keeps who erased whom and when, and loses
    the values of the member's earlier entries."""
    targets = targets or erasure_targets(session, customer_id=customer_id)
    now = clock()
    renamed = _rename_conversations(session, targets.conversation_ids)
    counts = {
        "conversations": len(renamed),
        **_erase_words(session, customer_id, renamed),
        **_erase_channels(session, customer_id, targets),
        "audit_entries": _scrub_audit(session, customer_id),
    }
    _erase_profile(session, customer_id, now)
    record_audit(
        session,
        actor=actor,
        action="forget_customer",
        entity="customer",
        entity_id=customer_id,
        changes={"erased": counts},
        clock=clock,
    )
    session.flush()
    return ErasureResult(customer_id, counts)


def _erase_profile(session: Session, customer_id: int, now: datetime) -> None:
    _run(
        session,
        update(Customer)
        .where(Customer.id == customer_id)
        .values(
            name=ERASED_NAME,
            phone=None,
            email=None,
            birthday=None,
            lunar_birth_month=None,
            lunar_birth_day=None,
            lunar_birth_leap=False,
            celebrates_lunar_birthday=False,
            erased_at=now,
        ),
    )
    _run(
        session,
        update(Consent)
        .where(Consent.customer_id == customer_id)
        .values(granted=False, source="erasure", updated_at=now),
    )
    _run(
        session,
        update(CareMessage)
        .where(CareMessage.customer_id == customer_id, CareMessage.state == "pending")
        .values(state="skipped", reason="erased", updated_at=now),
    )


def _rename_conversations(session: Session, conversation_ids: Iterable[str]) -> list[str]:
    """Conversation ids are channel identities (an OpenID, a session id that logs its holder
    in): each gets a random `erased:` id, in every table that refers to it; the new ids."""
    renamed: list[str] = []
    for old in sorted(conversation_ids):
        row = session.get(Conversation, old)
        new = ERASED_PREFIX + secrets.token_hex(12)
        if row is not None:
            session.execute(
                insert(Conversation).values(
                    id=new,
                    customer_id=row.customer_id,
                    channel=row.channel,
                    started_at=row.started_at,
                    last_message_at=row.last_message_at,
                    ended_at=row.ended_at,
                )
            )
        renamed.append(new)
        for table in (Interaction, Handoff, Ticket):
            if row is not None:
                _run(
                    session,
                    update(table).where(table.conversation_id == old).values(conversation_id=new),
                )
        _rekey_turns(session, old, new)
        # No foreign key to conversations: renamed whether the conversation is stored or not.
        for loose in (SurveyResponse, Feedback, CareDelivery):
            _run(
                session,
                update(loose).where(loose.conversation_id == old).values(conversation_id=new),
            )
        if row is not None:
            _run(session, delete(Conversation).where(Conversation.id == old))
    return renamed


def _rekey_turns(session: Session, old: str, new: str) -> None:
    """A turn's event key starts with its Rasa sender id (`<sender>:user:<time>`): the sender
    part becomes the new id, so the key keeps deduplicating without naming anyone."""
    keyed = Interaction.event_key.like(_escaped(old) + ":%", escape="\\")
    rest = func.substr(Interaction.event_key, len(old) + 1)
    _run(session, update(Interaction).where(keyed).values(event_key=literal(new) + rest))


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _erase_words(
    session: Session, customer_id: int | None, conversations: list[str]
) -> dict[str, int]:
    """Everything the member or staff wrote about them, in rows that are theirs (unless
    `customer_id` is None) or in their conversations (turns before they identified included);
    the rows and their figures stay."""

    def theirs(customer: Any, conversation: Any) -> Any:
        if customer_id is None:
            return conversation.in_(conversations)
        return or_(customer == customer_id, conversation.in_(conversations))

    handoffs = select(Handoff.id).where(theirs(Handoff.customer_id, Handoff.conversation_id))
    steps = {
        "interactions": update(Interaction)
        .where(
            theirs(Interaction.customer_id, Interaction.conversation_id),
            Interaction.text.is_not(None),
        )
        .values(text=None),
        "survey_comments": update(SurveyResponse)
        .where(
            theirs(SurveyResponse.customer_id, SurveyResponse.conversation_id),
            SurveyResponse.comment.is_not(None),
        )
        .values(comment=ERASED_TEXT),
        "feedback": update(Feedback)
        .where(theirs(Feedback.customer_id, Feedback.conversation_id))
        .values(text=ERASED_TEXT),
        "tickets": update(Ticket)
        .where(theirs(Ticket.customer_id, Ticket.conversation_id))
        .values(subject=ERASED_TEXT, description=ERASED_TEXT),
        "handoff_notes": update(HandoffNote)
        .where(HandoffNote.handoff_id.in_(handoffs))
        .values(text=ERASED_TEXT),
        "handoffs": update(Handoff).where(Handoff.id.in_(handoffs)).values(sender_id=None),
    }
    return {name: _run(session, step) for name, step in steps.items()}


def forget_conversation(
    session: Session, *, conversation_id: str, actor: str, clock: Clock = utcnow
) -> dict[str, int]:
    """Erase one conversation's history (a WeChat follower's, after an unfollow, when the
    operator turns that on): its id, its turns' text, the comments, feedback, tickets and notes
    written in it, and its web chat mailbox. The member, their other conversations and every
    count stay. The audit entry names the new anonymous id, not the old one."""
    renamed = _rename_conversations(session, [conversation_id])
    counts = {"conversations": len(renamed), **_erase_words(session, None, renamed)}
    counts["webchat_messages"] = _run(
        session, delete(WebChatMessage).where(WebChatMessage.session_id == conversation_id)
    )
    record_audit(
        session,
        actor=actor,
        action="forget_conversation",
        entity="conversation",
        entity_id=renamed[0],
        changes={"erased": counts},
        clock=clock,
    )
    return counts


def _erase_channels(session: Session, customer_id: int, targets: ErasureTargets) -> dict[str, int]:
    """Identities, the web chat mailbox and presence, and one-time codes of the member."""
    senders = sorted(targets.sender_ids | targets.conversation_ids)
    steps = {
        "channel_identities": delete(ChannelIdentity).where(
            ChannelIdentity.customer_id == customer_id
        ),
        "webchat_messages": delete(WebChatMessage).where(WebChatMessage.session_id.in_(senders)),
        "webchat_presence": delete(WebChatPresence).where(WebChatPresence.session_id.in_(senders)),
        "login_codes": delete(LoginCode).where(
            or_(LoginCode.customer_id == customer_id, LoginCode.client.in_(senders))
        ),
    }
    return {name: _run(session, step) for name, step in steps.items()}


def _scrub_audit(session: Session, customer_id: int) -> int:
    """Earlier audit entries about the member keep who did what when, not the values."""
    return _run(
        session,
        update(AuditEntry)
        .where(AuditEntry.entity == "customer", AuditEntry.entity_id == str(customer_id))
        .values(changes={"erased": True}),
    )


# Export ------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return value


def _row(row: Any) -> dict[str, Any]:
    return {column.name: _jsonable(getattr(row, column.key)) for column in row.__table__.columns}


def _rows(session: Session, query: Any) -> list[dict[str, Any]]:
    return [_row(row) for row in session.scalars(query)]


def export_customer(session: Session, *, customer_id: int) -> dict[str, Any]:
    """Everything held about one member, as JSON-ready data (PIPL's right of access and
    portability): profile, consents and their history, identities, orders with items and
    shipping, points, coupons, conversations with every turn, surveys, feedback, tickets,
    handoffs with their notes, and the care messages planned for them (and where each was
    delivered)."""
    customer = _customer_row(session, customer_id)
    order_ids = select(Order.id).where(Order.customer_id == customer_id)
    conversations = _rows(
        session,
        select(Conversation)
        .where(Conversation.customer_id == customer_id)
        .order_by(Conversation.started_at),
    )
    for conversation in conversations:
        conversation["turns"] = _rows(
            session,
            select(Interaction)
            .where(Interaction.conversation_id == conversation["id"])
            .order_by(Interaction.occurred_at, Interaction.id),
        )
    handoffs = _rows(
        session, select(Handoff).where(Handoff.customer_id == customer_id).order_by(Handoff.id)
    )
    for handoff in handoffs:
        handoff["notes"] = _rows(
            session,
            select(HandoffNote).where(HandoffNote.handoff_id == handoff["id"]).order_by("id"),
        )
    return {
        "customer": _row(customer),
        "consents": _rows(session, select(Consent).where(Consent.customer_id == customer_id)),
        "consent_history": _rows(
            session,
            select(ConsentChange)
            .where(ConsentChange.customer_id == customer_id)
            .order_by(ConsentChange.changed_at, ConsentChange.id),
        ),
        "identities": _rows(
            session, select(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id)
        ),
        "orders": _rows(
            session,
            select(Order).where(Order.customer_id == customer_id).order_by(Order.placed_at),
        ),
        "order_items": _rows(session, select(OrderItem).where(OrderItem.order_id.in_(order_ids))),
        "shipping_events": _rows(
            session, select(ShippingEvent).where(ShippingEvent.order_id.in_(order_ids))
        ),
        "points_ledger": _rows(
            session,
            select(PointsEntry)
            .where(PointsEntry.customer_id == customer_id)
            .order_by(PointsEntry.created_at, PointsEntry.id),
        ),
        "coupons": _rows(session, select(Coupon).where(Coupon.customer_id == customer_id)),
        "conversations": conversations,
        "surveys": _rows(
            session, select(SurveyResponse).where(SurveyResponse.customer_id == customer_id)
        ),
        "feedback": _rows(session, select(Feedback).where(Feedback.customer_id == customer_id)),
        "tickets": _rows(session, select(Ticket).where(Ticket.customer_id == customer_id)),
        "handoffs": handoffs,
        "care_messages": _rows(
            session, select(CareMessage).where(CareMessage.customer_id == customer_id)
        ),
        "care_deliveries": _rows(
            session,
            select(CareDelivery)
            .join(CareMessage, CareMessage.id == CareDelivery.care_message_id)
            .where(CareMessage.customer_id == customer_id),
        ),
    }


# Retention ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of personal data is kept, in days (docs/personal-data.md)."""

    interaction_text_days: int = 365
    mailbox_days: int = 30
    transcript_days: int = 365
    login_code_days: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetentionPolicy:
        """`CAREBOT_RETENTION_<FIELD>` overrides each period (e.g. ..._MAILBOX_DAYS=7)."""
        defaults = cls()
        values = {
            name: int(env.get(f"CAREBOT_RETENTION_{name.upper()}", getattr(defaults, name)))
            for name in ("interaction_text_days", "mailbox_days", "transcript_days")
        }
        values["login_code_days"] = int(
            env.get("CAREBOT_RETENTION_LOGIN_CODE_DAYS", defaults.login_code_days)
        )
        return cls(**values)


def apply_retention(
    session: Session, *, policy: RetentionPolicy, clock: Clock = utcnow
) -> dict[str, int]:
    """Anonymise turns older than the policy (the text goes, the row and its intent, channel,
    speaker and time stay, so every dashboard count over a longer period is unchanged), delete
    web chat mailbox messages and expired one-time codes older than theirs; how many of each.
    One-time codes stay at least a day past expiry: the lockout and rate limits look back 24 h.
    """
    now = clock()
    code_days = max(policy.login_code_days, 1)
    steps = {
        "interaction_texts": update(Interaction)
        .where(
            Interaction.occurred_at < now - timedelta(days=policy.interaction_text_days),
            Interaction.text.is_not(None),
        )
        .values(text=None),
        "webchat_messages": delete(WebChatMessage).where(
            WebChatMessage.created_at < now - timedelta(days=policy.mailbox_days)
        ),
    }
    counts = {name: _run(session, step) for name, step in steps.items()}
    expired_before = now - timedelta(days=code_days)
    counts["login_codes"] = purge_login_codes(session, expired_before=expired_before)
    return counts
