"""Tables of the CRM store. Import-safe: no engine, no I/O.

Vocabularies are tuples here so that validation, CHECK constraints and docs share one source.
Times are stored as naive UTC and come back timezone-aware (see `UtcDateTime`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import declarative_base
from sqlalchemy.types import TypeDecorator

from crm_store.clock import as_utc

TIERS = ("普通", "银卡", "金卡", "钻石")
CHANNELS = ("web", "wechat")
CATEGORIES = ("care", "follow_up", "survey", "offer")
# rest_user: a user id of the brand's own back end, vouched for by the REST channel's credential.
IDENTITY_KINDS = ("web_user", "web_session", "wechat_openid", "wechat_unionid", "rest_user")
ORDER_STATUSES = ("pending", "paid", "shipped", "delivered", "completed", "cancelled", "refunded")
SHIPPING_STATUSES = (
    "created",
    "picked_up",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "exception",
)
LEDGER_KINDS = ("earn", "redeem", "expire", "adjust")
SPEAKERS = ("customer", "bot", "agent")
HANDLERS = ("bot", "agent")
HANDOFF_STATES = ("waiting", "active", "closed")
# Open = not closed; at most one open handoff per conversation (a partial unique index).
OPEN_HANDOFF = "state <> 'closed'"
CUSTOMER_TURN = "speaker = 'customer'"
FALLBACK_TURN = "intent = 'nlu_fallback'"
WITHDRAWN = "NOT granted"
UNRECORDED = "state = 'sent' AND responses_recorded_at IS NULL"
KEYED_ENTRY = "idempotency_key IS NOT NULL"
TICKET_KINDS = ("complaint", "return", "refund", "message")
TICKET_STATUSES = ("open", "in_progress", "waiting_customer", "resolved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
SURVEY_TRIGGERS = ("end_of_chat", "after_handoff", "post_purchase")
# asked: no answer yet (no reply); partial: some questions answered, the survey unfinished or
# left (migration 0016); answered: finished; declined: said no before answering anything.
SURVEY_STATUSES = ("asked", "partial", "answered", "declined")
POLARITIES = ("positive", "negative", "neutral")
STAFF_ROLES = ("agent", "supervisor", "manager", "admin")
CAMPAIGN_KINDS = ("birthday", "holiday", "follow_up", "care_tip", "win_back", "survey")
CAMPAIGN_STATUSES = ("draft", "active", "paused", "ended")
OUTBOX_STATES = ("pending", "sending", "sent", "failed", "skipped")
OFFER_KINDS = ("amount_off", "percent_off", "points")
COUPON_STATUSES = ("issued", "redeemed", "expired")
WEBCHAT_SENDERS = ("user", "bot")
LIFECYCLE_STAGES = ("new", "converting", "maintaining", "loyal", "churning")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Base: Any = declarative_base(metadata=MetaData(naming_convention=NAMING))


class UtcDateTime(TypeDecorator):
    """Stores naive UTC, returns aware UTC, so SQLite and PostgreSQL answer alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


def one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    quoted = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=name)


def fk(target: str, ondelete: str | None = "CASCADE") -> ForeignKey:
    return ForeignKey(target, ondelete=ondelete)


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (one_of("role", STAFF_ROLES, "role"),)

    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(64), nullable=False)
    role = Column(String(16), nullable=False)
    active = Column(Boolean, nullable=False, default=True)
    # pbkdf2_sha256$iterations$salt$hash; NULL means the account cannot log in with a password.
    password_hash = Column(String(255))
    created_at = Column(UtcDateTime, nullable=False)
    # Login throttling (docs/security.md): wrong passwords in a row and the lockout they earned.
    failed_logins = Column(Integer, nullable=False, default=0, server_default="0")
    locked_until = Column(UtcDateTime)
    # Bumped on logout and password change: every cookie signed with an older version is void.
    session_version = Column(Integer, nullable=False, default=0, server_default="0")


class SpentToken(Base):
    """A single-use value already seen (a WeChat QR link token, a signed push's nonce, a REST
    signature): seen again before `expires_at`, it is a replay. Rows past expiry may be purged."""

    __tablename__ = "spent_tokens"

    scope = Column(String(16), primary_key=True)
    key = Column(String(128), primary_key=True)
    expires_at = Column(UtcDateTime, nullable=False, index=True)


class LoginCode(Base):
    """A one-time code sent to a phone to identify a customer (docs/security.md).

    Only a salted digest of the code is kept, and the phone only as a keyed digest: the rows
    exist to enforce expiry, attempts and the rate limits per phone, per client and overall.
    `customer_id` is NULL when the number belongs to nobody (the customer hears the same answer).
    """

    __tablename__ = "login_codes"
    __table_args__ = (
        Index("ix_login_codes_phone_key_created_at", "phone_key", "created_at"),
        Index("ix_login_codes_client_created_at", "client", "created_at"),
    )

    id = Column(Integer, primary_key=True)
    phone_key = Column(String(64), nullable=False)
    client = Column(String(128), nullable=False)
    customer_id = Column(Integer, fk("customers.id"))
    digest = Column(String(64), nullable=False)
    salt = Column(String(32), nullable=False)
    created_at = Column(UtcDateTime, nullable=False, index=True)
    expires_at = Column(UtcDateTime, nullable=False)
    attempts_left = Column(SmallInteger, nullable=False)
    used_at = Column(UtcDateTime)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        # The dashboard narrows facts to a tier's customers from the index alone (0012).
        Index("ix_customers_tier_id", "tier", "id"),
        one_of("tier", TIERS, "tier"),
        one_of("preferred_channel", CHANNELS, "preferred_channel"),
        CheckConstraint("points_balance >= 0", name="points_balance"),
    )

    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False)
    phone = Column(String(20), unique=True)
    email = Column(String(254))
    birthday = Column(Date)
    # The lunar birthday is kept as month/day (+leap month flag) because its Gregorian date moves.
    lunar_birth_month = Column(SmallInteger)
    lunar_birth_day = Column(SmallInteger)
    lunar_birth_leap = Column(Boolean, nullable=False, default=False)
    celebrates_lunar_birthday = Column(Boolean, nullable=False, default=False)
    tier = Column(String(8), nullable=False, index=True)
    # A cache of SUM(points_ledger.delta), written in the same transaction as each ledger row;
    # the guarded UPDATE on it is what stops a double spend. reconcile_points() re-derives it.
    points_balance = Column(Integer, nullable=False, default=0)
    preferred_channel = Column(String(16), nullable=False)
    timezone = Column(String(64), nullable=False)
    # Local wall-clock times in `timezone`; the window may wrap midnight (22:00-08:00).
    quiet_start = Column(Time)
    quiet_end = Column(Time)
    created_at = Column(UtcDateTime, nullable=False)
    last_active_at = Column(UtcDateTime)
    # Set by `carebot forget` (migration 0015): the row stays, without anything that names the
    # person, so orders, points and the dashboard's aggregates keep their customer.
    erased_at = Column(UtcDateTime)


class Consent(Base):
    __tablename__ = "consents"
    __table_args__ = (
        # Withdrawals by time: the dashboard's opt-outs after a care message (migration 0012).
        Index(
            "ix_consents_withdrawn_at",
            "updated_at",
            sqlite_where=text(WITHDRAWN),
            postgresql_where=text(WITHDRAWN),
        ),
        one_of("category", CATEGORIES, "category"),
    )

    customer_id = Column(Integer, fk("customers.id"), primary_key=True)
    category = Column(String(16), primary_key=True)
    granted = Column(Boolean, nullable=False)
    source = Column(String(32), nullable=False)
    updated_at = Column(UtcDateTime, nullable=False)


class ConsentChange(Base):
    """Every grant and withdrawal, when and on which channel (migration 0015); `consents` keeps
    only the current state that campaign queries join on."""

    __tablename__ = "consent_changes"
    __table_args__ = (
        # Withdrawals by time: the dashboard's opt-outs after a care message.
        Index(
            "ix_consent_changes_withdrawn_at",
            "changed_at",
            sqlite_where=text(WITHDRAWN),
            postgresql_where=text(WITHDRAWN),
        ),
        Index("ix_consent_changes_customer_id_changed_at", "customer_id", "changed_at"),
        one_of("category", CATEGORIES, "category"),
    )

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, fk("customers.id"), nullable=False)
    category = Column(String(16), nullable=False)
    granted = Column(Boolean, nullable=False)
    source = Column(String(32), nullable=False)
    # web, wechat, rest (a chat), console, cli, signup, import; NULL for changes before 0015
    channel = Column(String(16))
    changed_at = Column(UtcDateTime, nullable=False)


class ChannelIdentity(Base):
    __tablename__ = "channel_identities"
    __table_args__ = (
        UniqueConstraint("kind", "value"),
        one_of("kind", IDENTITY_KINDS, "kind"),
    )

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, fk("customers.id"), nullable=False, index=True)
    kind = Column(String(16), nullable=False)
    value = Column(String(128), nullable=False)
    created_at = Column(UtcDateTime, nullable=False)


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (CheckConstraint("price_cents >= 0", name="price"),)

    sku = Column(String(32), primary_key=True)
    name = Column(String(64), nullable=False)
    category = Column(String(32), nullable=False)
    price_cents = Column(Integer, nullable=False)
    warranty_months = Column(SmallInteger, nullable=False)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_customer_id_placed_at", "customer_id", "placed_at"),
        one_of("status", ORDER_STATUSES, "status"),
        CheckConstraint("total_cents >= 0", name="total"),
    )

    id = Column(String(14), primary_key=True)
    customer_id = Column(Integer, fk("customers.id"), nullable=False)
    status = Column(String(16), nullable=False)
    total_cents = Column(Integer, nullable=False)
    placed_at = Column(UtcDateTime, nullable=False)
    carrier = Column(String(32))


class OrderItem(Base):
    __tablename__ = "order_items"
    __table_args__ = (
        Index("ix_order_items_warranty_ends_on", "warranty_ends_on"),  # campaign planning
        CheckConstraint("quantity > 0", name="quantity"),
        CheckConstraint("unit_price_cents >= 0", name="unit_price"),
    )

    id = Column(Integer, primary_key=True)
    order_id = Column(String(14), fk("orders.id"), nullable=False, index=True)
    sku = Column(String(32), fk("products.sku", ondelete=None), nullable=False)
    quantity = Column(SmallInteger, nullable=False)
    unit_price_cents = Column(Integer, nullable=False)
    warranty_ends_on = Column(Date)


class ShippingEvent(Base):
    __tablename__ = "shipping_events"
    __table_args__ = (
        Index("ix_shipping_events_status_occurred_at", "status", "occurred_at"),  # planning
        one_of("status", SHIPPING_STATUSES, "status"),
    )

    id = Column(Integer, primary_key=True)
    order_id = Column(String(14), fk("orders.id"), nullable=False, index=True)
    status = Column(String(24), nullable=False)
    location = Column(String(64))
    occurred_at = Column(UtcDateTime, nullable=False)


class PointsEntry(Base):
    __tablename__ = "points_ledger"
    __table_args__ = (
        Index("ix_points_ledger_customer_id_created_at", "customer_id", "created_at"),
        # A grant or spend that must happen once carries a key (migration 0017): the database
        # refuses its second row, however many paths or retries try to write it.
        Index(
            "ix_points_ledger_once",
            "customer_id",
            "idempotency_key",
            unique=True,
            sqlite_where=text(KEYED_ENTRY),
            postgresql_where=text(KEYED_ENTRY),
        ),
        one_of("kind", LEDGER_KINDS, "kind"),
        CheckConstraint("delta <> 0", name="delta"),
    )

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, fk("customers.id"), nullable=False)
    kind = Column(String(8), nullable=False)
    delta = Column(Integer, nullable=False)
    balance_after = Column(Integer, nullable=False)
    reason = Column(String(64), nullable=False)
    order_id = Column(String(14), fk("orders.id", ondelete="SET NULL"))
    created_at = Column(UtcDateTime, nullable=False)
    # Only earn rows expire; expiry consumes the oldest points first (FIFO).
    expires_at = Column(UtcDateTime)
    # Once per customer (migration 0017): "birthday_gift:2026" (the year's gift), "redeem:<the
    # redemption request's id>" (a confirmed redemption); NULL for entries that may repeat.
    idempotency_key = Column(String(64))


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_started_at", "started_at"),  # dashboard (migration 0012)
        one_of("channel", CHANNELS, "channel"),
    )

    id = Column(String(64), primary_key=True)
    customer_id = Column(Integer, fk("customers.id", ondelete="SET NULL"), index=True)
    channel = Column(String(16), nullable=False)
    started_at = Column(UtcDateTime, nullable=False)
    last_message_at = Column(UtcDateTime, nullable=False)
    ended_at = Column(UtcDateTime)


class Interaction(Base):
    __tablename__ = "interactions"
    __table_args__ = (
        Index("ix_interactions_customer_id_occurred_at", "customer_id", "occurred_at"),
        # The dashboard counts customer turns and fallbacks of a date range (migration 0012).
        Index(
            "ix_interactions_customer_turns",
            "occurred_at",
            sqlite_where=text(CUSTOMER_TURN),
            postgresql_where=text(CUSTOMER_TURN),
        ),
        Index(
            "ix_interactions_fallback_turns",
            "occurred_at",
            sqlite_where=text(FALLBACK_TURN),
            postgresql_where=text(FALLBACK_TURN),
        ),
        one_of("speaker", SPEAKERS, "speaker"),
        one_of("handled_by", HANDLERS, "handled_by"),
        one_of("channel", CHANNELS, "channel"),
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(64), fk("conversations.id"), nullable=False, index=True)
    customer_id = Column(Integer, fk("customers.id", ondelete="SET NULL"))
    channel = Column(String(16), nullable=False)
    speaker = Column(String(8), nullable=False)
    text = Column(Text)
    intent = Column(String(64))
    confidence = Column(Float)
    handled_by = Column(String(8), nullable=False)
    agent_id = Column(Integer, fk("staff_users.id", ondelete="SET NULL"))
    occurred_at = Column(UtcDateTime, nullable=False)
    # Idempotency key of the source event (the Rasa event broker: sender, event type and
    # timestamp), so a redelivered turn is stored once. A unique index rather than a constraint:
    # adding it on SQLite needs no copy of the table.
    event_key = Column(String(96), index=True, unique=True)


class Handoff(Base):
    __tablename__ = "handoffs"
    __table_args__ = (
        Index("ix_handoffs_state_requested_at", "state", "requested_at"),
        # One open handoff per conversation, enforced by the database so that two concurrent
        # requests cannot both open one (migration 0005); closed ones may repeat.
        Index(
            "ix_handoffs_one_open_per_conversation",
            "conversation_id",
            unique=True,
            sqlite_where=text(OPEN_HANDOFF),
            postgresql_where=text(OPEN_HANDOFF),
        ),
        one_of("state", HANDOFF_STATES, "state"),
    )

    id = Column(Integer, primary_key=True)
    conversation_id = Column(String(64), fk("conversations.id"), nullable=False, index=True)
    customer_id = Column(Integer, fk("customers.id", ondelete="SET NULL"))
    queue = Column(String(32), nullable=False)
    reason = Column(String(64), nullable=False)
    state = Column(String(8), nullable=False)
    agent_id = Column(Integer, fk("staff_users.id", ondelete="SET NULL"))
    requested_at = Column(UtcDateTime, nullable=False)
    accepted_at = Column(UtcDateTime)
    closed_at = Column(UtcDateTime)
    outcome = Column(String(32))
    # Migration 0011 (the staff console): the queue's order, how to reach the customer through
    # Rasa (the raw sender id: `conversation_id` may be a hash of a long one, and the output
    # channel the customer wrote on), and when the customer was told nobody has picked up yet.
    priority = Column(SmallInteger, nullable=False, server_default=text("0"))
    sender_id = Column(String(255))
    output_channel = Column(String(32))
    timeout_notified_at = Column(UtcDateTime)


class HandoffNote(Base):
    """An agent's internal note on a handoff: never shown to the customer."""

    __tablename__ = "handoff_notes"

    id = Column(Integer, primary_key=True)
    handoff_id = Column(Integer, fk("handoffs.id"), nullable=False, index=True)
    author_id = Column(Integer, fk("staff_users.id", ondelete="SET NULL"))
    text = Column(Text, nullable=False)
    created_at = Column(UtcDateTime, nullable=False)


class ReplySnippet(Base):
    """A saved quick reply that agents insert into their answer (the console's snippets)."""

    __tablename__ = "reply_snippets"

    id = Column(Integer, primary_key=True)
    title = Column(String(64), nullable=False, unique=True)
    text = Column(Text, nullable=False)
    created_by = Column(Integer, fk("staff_users.id", ondelete="SET NULL"))
    created_at = Column(UtcDateTime, nullable=False)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_status_sla_due_at", "status", "sla_due_at"),
        one_of("kind", TICKET_KINDS, "kind"),
        one_of("status", TICKET_STATUSES, "status"),
        one_of("priority", PRIORITIES, "priority"),
    )

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, fk("customers.id"), nullable=False, index=True)
    order_id = Column(String(14), fk("orders.id", ondelete="SET NULL"))
    conversation_id = Column(String(64), fk("conversations.id", ondelete="SET NULL"))
    kind = Column(String(16), nullable=False)
    status = Column(String(16), nullable=False)
    priority = Column(String(8), nullable=False)
    owner_id = Column(Integer, fk("staff_users.id", ondelete="SET NULL"))
    subject = Column(String(128), nullable=False)
    description = Column(Text, nullable=False)
    created_at = Column(UtcDateTime, nullable=False)
    updated_at = Column(UtcDateTime, nullable=False)
    sla_due_at = Column(UtcDateTime, nullable=False)
    resolved_at = Column(UtcDateTime)


class SurveyResponse(Base):
    """One row per survey asked; the unique key makes a repeated submission a no-op."""

    __tablename__ = "survey_responses"
    __table_args__ = (
        UniqueConstraint("conversation_id", "trigger"),
        Index("ix_survey_responses_customer_id_asked_at", "customer_id", "asked_at"),
        # Reports read a date range of every customer's surveys (migration 0007).
        Index("ix_survey_responses_asked_at", "asked_at"),
        one_of("trigger", SURVEY_TRIGGERS, "trigger"),
        one_of("status", SURVEY_STATUSES, "status"),
        one_of("channel", CHANNELS, "channel"),
        CheckConstraint("csat IS NULL OR csat BETWEEN 1 AND 5", name="csat"),
        CheckConstraint("nps IS NULL OR nps BETWEEN 0 AND 10", name="nps"),
    )

    id = Column(Integer, primary_key=True)
    # Not a foreign key: a survey may be recorded before any turn of its conversation was logged.
    conversation_id = Column(String(64), nullable=False)
    trigger = Column(String(16), nullable=False)
    channel = Column(String(16), nullable=False)
    status = Column(String(8), nullable=False)
    customer_id = Column(Integer, fk("customers.id", ondelete="SET NULL"))
    agent_id = Column(Integer, fk("staff_users.id", ondelete="SET NULL"))
    csat = Column(SmallInteger)
    nps = Column(SmallInteger)
    comment = Column(Text)
    themes = Column(JSON, nullable=False, default=list)
    # The comment's analysed polarity (POLARITIES; migration 0013); None without a comment.
    polarity = Column(String(8))
    asked_at = Column(UtcDateTime, nullable=False)
    answered_at = Column(UtcDateTime)


class Tag(Base):
    __tablename__ = "tags"

    id = Column(Integer, primary_key=True)
    name = Column(String(32), nullable=False, unique=True)


class CustomerTag(Base):
    __tablename__ = "customer_tags"

    customer_id = Column(Integer, fk("customers.id"), primary_key=True)
    tag_id = Column(Integer, fk("tags.id"), primary_key=True, index=True)
    added_at = Column(UtcDateTime, nullable=False)


class Segment(Base):
    """A named set of customers, materialised by a set-based refresh (see analytics)."""

    __tablename__ = "segments"

    id = Column(Integer, primary_key=True)
    key = Column(String(48), nullable=False, unique=True)
    name = Column(String(64), nullable=False)
    description = Column(Text)
    created_at = Column(UtcDateTime, nullable=False)
    refreshed_at = Column(UtcDateTime)


class SegmentMember(Base):
    __tablename__ = "segment_members"

    segment_id = Column(Integer, fk("segments.id"), primary_key=True)
    customer_id = Column(Integer, fk("customers.id"), primary_key=True, index=True)


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (
        one_of("kind", OFFER_KINDS, "kind"),
        CheckConstraint("value > 0", name="value"),
        CheckConstraint("valid_days > 0", name="valid_days"),
    )

    id = Column(Integer, primary_key=True)
    key = Column(String(48), nullable=False, unique=True)
    name = Column(String(64), nullable=False)
    kind = Column(String(16), nullable=False)
    # Cents for amount_off, percent for percent_off, points for points.
    value = Column(Integer, nullable=False)
    min_spend_cents = Column(Integer, nullable=False, default=0)
    valid_days = Column(SmallInteger, nullable=False)
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(UtcDateTime, nullable=False)


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("offer_id", "customer_id"),
        Index("ix_coupons_customer_id_status", "customer_id", "status"),
        one_of("status", COUPON_STATUSES, "status"),
    )

    id = Column(Integer, primary_key=True)
    code = Column(String(20), nullable=False, unique=True)
    offer_id = Column(Integer, fk("offers.id"), nullable=False)
    customer_id = Column(Integer, fk("customers.id"), nullable=False)
    status = Column(String(8), nullable=False)
    issued_at = Column(UtcDateTime, nullable=False)
    expires_at = Column(UtcDateTime, nullable=False)
    redeemed_at = Column(UtcDateTime)
    order_id = Column(String(14), fk("orders.id", ondelete="SET NULL"))


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        one_of("kind", CAMPAIGN_KINDS, "kind"),
        one_of("category", CATEGORIES, "category"),
        one_of("status", CAMPAIGN_STATUSES, "status"),
        CheckConstraint("daily_cap >= 0", name="daily_cap"),
    )

    id = Column(Integer, primary_key=True)
    key = Column(String(48), nullable=False, unique=True)
    name = Column(String(64), nullable=False)
    kind = Column(String(16), nullable=False)
    # The consent category a customer must have granted to receive this campaign's messages.
    category = Column(String(16), nullable=False)
    # "active" is on: the scheduler plans it; "paused" is off (a manager switches it in the
    # console, docs/campaigns.md). New installations create the planned campaigns paused.
    status = Column(String(8), nullable=False)
    offer_id = Column(Integer, fk("offers.id", ondelete="SET NULL"))
    starts_at = Column(UtcDateTime)
    ends_at = Column(UtcDateTime)
    created_at = Column(UtcDateTime, nullable=False)
    # The most outbox rows planning writes for this campaign in one day; NULL: no cap
    # (migration 0016).
    daily_cap = Column(Integer)


class CareMessage(Base):
    """The outbox: one row per customer x campaign x period, so a campaign never repeats itself."""

    __tablename__ = "care_messages"
    __table_args__ = (
        UniqueConstraint("customer_id", "campaign_id", "period"),
        Index("ix_care_messages_state_scheduled_at", "state", "scheduled_at"),
        Index("ix_care_messages_created_at", "created_at"),  # dashboard (migration 0012)
        Index(
            "ix_care_messages_unrecorded",
            "sent_at",
            sqlite_where=text(UNRECORDED),
            postgresql_where=text(UNRECORDED),
        ),
        one_of("state", OUTBOX_STATES, "state"),
        one_of("channel", CHANNELS, "channel"),
    )

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, fk("customers.id"), nullable=False)
    campaign_id = Column(Integer, fk("campaigns.id"), nullable=False, index=True)
    # "2026" for a birthday, "2026-11" for a monthly tip, an order id for a follow-up, ...
    period = Column(String(32), nullable=False)
    channel = Column(String(16), nullable=False)
    state = Column(String(8), nullable=False)
    attempts = Column(SmallInteger, nullable=False, default=0)
    reason = Column(String(255))
    # The claim that last moved the row to `sending` (migration 0005): a claimer re-reads its
    # rows by this token after one UPDATE claimed them (SQLAlchemy 1.4: no RETURNING on SQLite).
    claim_token = Column(String(32))
    scheduled_at = Column(UtcDateTime, nullable=False)
    sent_at = Column(UtcDateTime)
    created_at = Column(UtcDateTime, nullable=False)
    updated_at = Column(UtcDateTime, nullable=False)
    # Win-back rows, treated and control alike (migration 0009): "returned" when the customer
    # ordered within 30 days of the row's creation, else "lapsed"; set once the window closed.
    outcome = Column(String(8))
    outcome_at = Column(UtcDateTime)
    # What the customer did after a sent message (migration 0012, crm_store/dashboard/
    # summaries.py): the first turn within 48 hours, a withdrawal of the campaign's consent
    # within 7 days, and when both windows had closed and were recorded (NULL: not final yet).
    replied_at = Column(UtcDateTime)
    opted_out_at = Column(UtcDateTime)
    responses_recorded_at = Column(UtcDateTime)


class CareDelivery(Base):
    """The one delivery of an outbox row (migration 0017): the care action records it before it
    composes the message, in the same transaction, so a second trigger of the row (a retry after
    a crash, a reclaimed claim, a second dispatcher, another channel) finds it and says nothing.
    The conversation id is a channel identity: erasure renames it like the turns'."""

    __tablename__ = "care_deliveries"
    __table_args__ = (one_of("channel", CHANNELS, "channel"),)

    care_message_id = Column(Integer, fk("care_messages.id"), primary_key=True)
    conversation_id = Column(String(64), nullable=False, index=True)
    channel = Column(String(16), nullable=False)
    delivered_at = Column(UtcDateTime, nullable=False)


class Feedback(Base):
    """Free feedback (give_feedback outside a survey) with the themes and polarity found in it."""

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_created_at", "created_at"),
        one_of("channel", CHANNELS, "channel"),
        one_of("polarity", POLARITIES, "polarity"),
    )

    id = Column(Integer, primary_key=True)
    customer_id = Column(Integer, fk("customers.id", ondelete="SET NULL"), index=True)
    conversation_id = Column(String(64), nullable=False)
    channel = Column(String(16), nullable=False)
    text = Column(Text, nullable=False)
    themes = Column(JSON, nullable=False, default=list)
    polarity = Column(String(8), nullable=False)
    created_at = Column(UtcDateTime, nullable=False)


class WebChatMessage(Base):
    """The web chat's mailbox: every message of a session, kept until the customer has seen it.

    Bot messages are stored before they are emitted, so a customer who is offline (or whose
    socket dies mid-emit) sees them on the next visit; `delivered_at` is set by the widget's ack.
    """

    __tablename__ = "webchat_messages"
    __table_args__ = (
        Index("ix_webchat_messages_session_id_id", "session_id", "id"),
        one_of("sender", WEBCHAT_SENDERS, "sender"),
    )

    id = Column(Integer, primary_key=True)
    session_id = Column(String(64), nullable=False)
    sender = Column(String(8), nullable=False)
    payload = Column(JSON, nullable=False)
    created_at = Column(UtcDateTime, nullable=False)
    delivered_at = Column(UtcDateTime)


class WebChatPresence(Base):
    """Which web chat sessions have an open socket, as a lease every Rasa process renews."""

    __tablename__ = "webchat_presence"

    session_id = Column(String(64), primary_key=True)
    connected_until = Column(UtcDateTime, nullable=False)


class ReconcileWatermark(Base):
    """How far the log consumer has read a tracker store's events (bot/reconcile.py): every
    event with an id up to `event_id` is in the interaction log."""

    __tablename__ = "reconcile_watermarks"

    source = Column(String(255), primary_key=True)  # the tracker database, password hidden
    event_id = Column(BigInteger, nullable=False)
    updated_at = Column(UtcDateTime, nullable=False)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity_entity_id", "entity", "entity_id"),)

    id = Column(Integer, primary_key=True)
    # "staff:12", "bot", "scheduler", "system".
    actor = Column(String(64), nullable=False)
    action = Column(String(64), nullable=False)
    entity = Column(String(32), nullable=False)
    entity_id = Column(String(64), nullable=False)
    changes = Column(JSON, nullable=False, default=dict)
    occurred_at = Column(UtcDateTime, nullable=False, index=True)


class CustomerMetrics(Base):
    """Lifecycle analytics per customer, rewritten whole by analytics.refresh_customer_metrics."""

    __tablename__ = "customer_metrics"

    # No foreign key and no secondary indexes: the table is rewritten whole and read by grouping
    # scans; checking and indexing a million rows was half the refresh time. A deleted
    # customer's row disappears at the next refresh.
    customer_id = Column(Integer, primary_key=True)
    computed_at = Column(UtcDateTime, nullable=False)
    last_order_at = Column(UtcDateTime)
    frequency = Column(Integer, nullable=False)
    monetary_cents = Column(Integer, nullable=False)
    r_score = Column(SmallInteger)
    f_score = Column(SmallInteger)
    m_score = Column(SmallInteger)
    rfm_segment = Column(String(24), nullable=False)
    churn_risk = Column(SmallInteger, nullable=False)
    clv_cents = Column(Integer, nullable=False)
    lifecycle_stage = Column(String(16), nullable=False)


class CustomerSummary(Base):
    """customer_metrics counted per tier, preferred channel, RFM segment and lifecycle stage:
    a few hundred rows that answer the dashboard's funnel and segments at any size (migration
    0012). Rewritten whole by dashboard.summaries.refresh_customer_summary after each metrics
    refresh; `computed_at` is that of the metrics it counts, so a stale summary is detected."""

    __tablename__ = "customer_summary"

    tier = Column(String(8), primary_key=True)
    preferred_channel = Column(String(16), primary_key=True)
    rfm_segment = Column(String(24), primary_key=True)
    lifecycle_stage = Column(String(16), primary_key=True)
    customers = Column(Integer, nullable=False)
    revenue_cents = Column(BigInteger, nullable=False)
    clv_cents = Column(BigInteger, nullable=False)
    computed_at = Column(UtcDateTime, nullable=False)
