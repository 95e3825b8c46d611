from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from crm_helpers import BACKENDS
from sqlalchemy import func, insert, inspect, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from crm_store.db import make_engine
from crm_store.migrate import downgrade, upgrade
from crm_store.models import Base, Conversation, Handoff

OPEN_HANDOFF_INDEX = "ix_handoffs_one_open_per_conversation"
SURVEY_ASKED_AT_INDEX = "ix_survey_responses_asked_at"
LEDGER_ONCE_INDEX = "ix_points_ledger_once"


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _indexes(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {index["name"] for index in inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_from_empty_downgrade_one_step_and_upgrade_again(
    backend: str, new_database_url: Callable[[str], str]
) -> None:
    url = new_database_url(backend)
    upgrade(url)
    assert _tables(url) == set(Base.metadata.tables)
    downgrade(url, "0016")
    assert "care_deliveries" not in _tables(url)
    assert "idempotency_key" not in _columns(url, "points_ledger")
    downgrade(url, "0012")
    assert "polarity" not in _columns(url, "survey_responses")
    downgrade(url, "0008")
    assert "outcome" not in _columns(url, "care_messages")
    downgrade(url, "0007")
    assert "webchat_messages" not in _tables(url) and "webchat_presence" not in _tables(url)
    downgrade(url, "0006")
    assert SURVEY_ASKED_AT_INDEX not in _indexes(url, "survey_responses")
    downgrade(url, "0005")
    assert "feedback" not in _tables(url)
    downgrade(url, "0004")
    assert "claim_token" not in _columns(url, "care_messages")
    assert OPEN_HANDOFF_INDEX not in _indexes(url, "handoffs")
    downgrade(url, "0003")
    assert "carrier" not in _columns(url, "orders")
    downgrade(url, "0002")
    assert "event_key" not in _columns(url, "interactions")
    downgrade(url, "0001")
    assert "care_messages" not in _tables(url) and "customers" in _tables(url)
    upgrade(url, "head")
    assert "event_key" in _columns(url, "interactions") and "carrier" in _columns(url, "orders")
    assert "claim_token" in _columns(url, "care_messages")
    assert OPEN_HANDOFF_INDEX in _indexes(url, "handoffs")
    assert SURVEY_ASKED_AT_INDEX in _indexes(url, "survey_responses")
    assert "webchat_messages" in _tables(url)
    assert "outcome" in _columns(url, "care_messages")
    assert "polarity" in _columns(url, "survey_responses")
    assert LEDGER_ONCE_INDEX in _indexes(url, "points_ledger")
    assert _tables(url) == set(Base.metadata.tables)
    downgrade(url, "base")
    assert _tables(url) == set()


@pytest.mark.parametrize("backend", BACKENDS)
def test_models_and_migrations_do_not_drift(
    backend: str, new_database_url: Callable[[str], str]
) -> None:
    url = new_database_url(backend)
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_0005_closes_duplicate_open_handoffs_before_it_forbids_them(
    backend: str, new_database_url: Callable[[str], str]
) -> None:
    """Duplicates the old race left behind: the accepted one stays open, else the oldest."""
    url = new_database_url(backend)
    upgrade(url, "0004")
    handoffs = [
        ("twice", "waiting"),
        ("twice", "waiting"),
        ("accepted", "waiting"),
        ("accepted", "active"),
        ("accepted", "closed"),
        ("once", "waiting"),
    ]
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            _insert_handoffs(connection, handoffs)
        upgrade(url, "0005")
        with engine.connect() as connection:
            rows = connection.execute(
                select(Handoff.id, Handoff.state, Handoff.outcome).order_by(Handoff.id)
            ).all()
    finally:
        engine.dispose()
    assert [(row.state, row.outcome) for row in rows] == [
        ("waiting", None),
        ("closed", "duplicate"),
        ("closed", "duplicate"),
        ("active", None),
        ("closed", None),
        ("waiting", None),
    ]


def _insert_handoffs(connection: Connection, handoffs: list[tuple[str, str]]) -> None:
    now = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)
    for conversation_id in dict.fromkeys(c for c, _ in handoffs):
        connection.execute(
            insert(Conversation).values(
                id=conversation_id, channel="web", started_at=now, last_message_at=now
            )
        )
    for conversation_id, state in handoffs:
        connection.execute(
            insert(Handoff).values(
                conversation_id=conversation_id,
                queue="general",
                reason="r",
                state=state,
                requested_at=now,
            )
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_0015_masks_the_phones_already_in_the_audit_log_and_starts_the_consent_history(
    backend: str, new_database_url: Callable[[str], str]
) -> None:
    from crm_store.models import AuditEntry, ConsentChange
    from crm_store.models import Consent as ConsentRow
    from crm_store.models import Customer as CustomerRow

    url = new_database_url(backend)
    upgrade(url, "0014")
    engine = make_engine(url)
    at = datetime(2026, 11, 1, tzinfo=timezone.utc)
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(AuditEntry.__table__).values(
                    actor="staff:1",
                    action="update_customer",
                    entity="customer",
                    entity_id="1",
                    changes={
                        "phone": ["13800138000", "+86 139 0013 9000"],
                        "tier": ["普通", "金卡"],
                    },
                    occurred_at=at,
                )
            )
            customer = {
                "name": "王小明",
                "tier": "普通",
                "points_balance": 0,
                "preferred_channel": "web",
                "timezone": "Asia/Shanghai",
                "created_at": at,
                "lunar_birth_leap": False,
                "celebrates_lunar_birthday": False,
            }
            connection.execute(insert(CustomerRow.__table__).values(id=1, **customer))
            connection.execute(
                insert(ConsentRow.__table__).values(
                    customer_id=1, category="offer", granted=False, source="chat", updated_at=at
                )
            )
        upgrade(url, "0015")
        with engine.connect() as connection:
            changes = connection.execute(select(AuditEntry.__table__.c.changes)).scalar_one()
            history = connection.execute(
                select(ConsentChange.__table__.c.category, ConsentChange.__table__.c.granted)
            ).all()
        assert changes == {"phone": ["138****8000", "139****9000"], "tier": ["普通", "金卡"]}
        assert [tuple(row) for row in history] == [("offer", False)]
    finally:
        engine.dispose()
    downgrade(url, "base")


@pytest.mark.parametrize("backend", BACKENDS)
def test_0016_marks_asked_surveys_with_answers_partial_and_keeps_the_others(
    backend: str, new_database_url: Callable[[str], str]
) -> None:
    from crm_store.models import SurveyResponse as ResponseRow

    table = ResponseRow.__table__
    url = new_database_url(backend)
    upgrade(url, "0015")
    engine = make_engine(url)
    at = datetime(2026, 11, 1, tzinfo=timezone.utc)
    rows = {  # conversation: (status, CSAT, NPS, comment)
        "answered": ("answered", 4, 9, "很好"),
        "declined": ("declined", None, None, None),
        "no-reply": ("asked", None, None, None),
        "asked-with-csat": ("asked", 2, None, None),
        "asked-with-comment": ("asked", None, None, "太慢了"),
    }
    try:
        with engine.begin() as connection:
            for conversation, (status, csat, nps, comment) in rows.items():
                connection.execute(
                    insert(table).values(
                        conversation_id=conversation,
                        trigger="end_of_chat",
                        channel="web",
                        status=status,
                        csat=csat,
                        nps=nps,
                        comment=comment,
                        themes=[],
                        asked_at=at,
                    )
                )
        upgrade(url, "0016")
        assert _statuses(engine) == {
            "answered": "answered",
            "declined": "declined",
            "no-reply": "asked",
            "asked-with-csat": "partial",
            "asked-with-comment": "partial",
        }
        downgrade(url, "0015")
        assert _statuses(engine) == {conversation: row[0] for conversation, row in rows.items()}
        with engine.connect() as connection:
            csat = connection.execute(
                select(table.c.csat).where(table.c.conversation_id == "asked-with-csat")
            ).scalar_one()
        assert csat == 2  # the answer outlives the downgrade
        partial = table.update().where(table.c.conversation_id == "no-reply")
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(partial.values(status="partial"))  # before 0016: not a status
        upgrade(url, "0016")
        with engine.begin() as connection:
            connection.execute(partial.values(status="partial"))
        assert _statuses(engine)["no-reply"] == "partial"
    finally:
        engine.dispose()
    downgrade(url, "base")


def _statuses(engine: Engine) -> dict[str, str]:
    from crm_store.models import SurveyResponse as ResponseRow

    table = ResponseRow.__table__
    with engine.connect() as connection:
        rows = connection.execute(select(table.c.conversation_id, table.c.status))
        return {row.conversation_id: row.status for row in rows}


@pytest.mark.parametrize("backend", BACKENDS)
def test_0018_keys_the_first_birthday_gift_of_each_year_and_keeps_every_entry(
    backend: str, new_database_url: Callable[[str], str]
) -> None:
    """A duplicate gift the old check-then-insert let through stays (bookkeeping); the first of
    each customer and year gets the key, so no path can credit that year again. Redemptions and
    other entries stay unkeyed and keep working; sent care messages keep their rows."""
    from crm_store.db import session_scope
    from crm_store.deliveries import record_delivery
    from crm_store.models import CareMessage as MessageRow
    from crm_store.models import PointsEntry as EntryRow
    from crm_store.points import earn_points, list_points_entries, redeem_points

    ledger = EntryRow.__table__
    url = new_database_url(backend)
    upgrade(url, "0017")
    engine = make_engine(url)
    at = datetime(2026, 11, 1, tzinfo=timezone.utc)
    entries = [  # customer, kind, delta, reason
        (1, "earn", 300, "birthday_gift:2026"),
        (1, "earn", 300, "birthday_gift:2026"),  # the duplicate
        (1, "earn", 300, "birthday_gift:2025"),
        (1, "redeem", -500, "coupon:web-1"),
        (2, "earn", 300, "birthday_gift:2026"),
        (2, "earn", 100, "order"),
    ]
    try:
        with engine.begin() as connection:
            balances: dict[int, int] = {}
            for customer_id in (1, 2):
                _insert_customer(connection, customer_id, at)
            _insert_sent_care_message(connection, at)
            for customer_id, kind, delta, reason in entries:
                balances[customer_id] = balances.get(customer_id, 0) + delta
                connection.execute(
                    insert(ledger).values(
                        customer_id=customer_id,
                        kind=kind,
                        delta=delta,
                        balance_after=balances[customer_id],
                        reason=reason,
                        created_at=at,
                    )
                )
            for customer_id, balance in balances.items():
                connection.exec_driver_sql(
                    f"UPDATE customers SET points_balance = {balance} WHERE id = {customer_id}"
                )
        upgrade(url, "0018")
        with engine.connect() as connection:
            keys = connection.execute(
                select(ledger.c.customer_id, ledger.c.reason, ledger.c.idempotency_key).order_by(
                    ledger.c.id
                )
            ).all()
        assert [row.idempotency_key for row in keys] == [
            "birthday_gift:2026",
            None,
            "birthday_gift:2025",
            None,
            "birthday_gift:2026",
            None,
        ]
        with session_scope(engine) as session:
            again = earn_points(
                session,
                customer_id=1,
                points=300,
                reason="birthday_gift:2026",
                idempotency_key="birthday_gift:2026",
            )
            assert again.created_at == at  # the stored gift, nothing credited
            redeem_points(
                session, customer_id=1, points=100, reason="coupon", idempotency_key="redeem:r1"
            )
            assert len(list_points_entries(session, customer_id=1)) == 5
            message_id = session.scalars(select(MessageRow.id)).one()
            assert record_delivery(
                session, care_message_id=message_id, conversation_id="o_1", channel="wechat"
            )
        downgrade(url, "0016")
        with engine.connect() as connection:
            assert connection.execute(select(func.count()).select_from(ledger)).scalar() == 7
    finally:
        engine.dispose()
    downgrade(url, "base")


def _insert_customer(connection: Connection, customer_id: int, at: datetime) -> None:
    from crm_store.models import Customer as CustomerRow

    connection.execute(
        insert(CustomerRow.__table__).values(
            id=customer_id,
            name=f"顾客{customer_id}",
            tier="普通",
            points_balance=0,
            preferred_channel="wechat",
            timezone="Asia/Shanghai",
            created_at=at,
            lunar_birth_leap=False,
            celebrates_lunar_birthday=False,
        )
    )


def _insert_sent_care_message(connection: Connection, at: datetime) -> None:
    from crm_store.models import Campaign as CampaignRow
    from crm_store.models import CareMessage as MessageRow

    connection.execute(
        insert(CampaignRow.__table__).values(
            id=1,
            key="birthday",
            name="生日",
            kind="birthday",
            category="care",
            status="active",
            created_at=at,
        )
    )
    connection.execute(
        insert(MessageRow.__table__).values(
            customer_id=1,
            campaign_id=1,
            period="2026",
            channel="wechat",
            state="sent",
            attempts=1,
            scheduled_at=at,
            sent_at=at,
            created_at=at,
            updated_at=at,
        )
    )
