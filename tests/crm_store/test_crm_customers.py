from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pytest
from sqlalchemy.orm import Session

from crm_store.audit import list_audit_entries
from crm_store.clock import ManualClock
from crm_store.customers import (
    LunarBirthday,
    create_customer,
    find_customer,
    get_consents,
    get_customer,
    in_quiet_hours,
    list_birthdays,
    list_customers,
    lunar_to_solar,
    may_contact,
    next_birthday,
    search_customers,
    set_birthday,
    set_consent,
    touch_customer,
    update_customer,
)
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.validation import normalize_phone


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("13800138000", "13800138000"),
        ("+86 138-0013-8000", "13800138000"),
        ("0086 13800138000", "13800138000"),
    ],
)
def test_normalize_phone_accepts_common_spellings(raw: str, clean: str) -> None:
    assert normalize_phone(raw) == clean


@pytest.mark.parametrize("raw", ["12800138000", "1380013800", "abc", "", "+1 415 555 0100"])
def test_normalize_phone_rejects_non_mobile_numbers(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_phone(raw)


def test_create_and_get_customer(session: Session, clock: ManualClock) -> None:
    created = create_customer(
        session, name="王小明", phone="+86 13800138000", tier="金卡", clock=clock
    )
    fetched = get_customer(session, customer_id=created.id)
    assert fetched == created
    assert (fetched.phone, fetched.tier, fetched.points_balance) == ("13800138000", "金卡", 0)
    assert fetched.created_at == clock()
    assert fetched.created_at.tzinfo is not None


def test_new_customer_gets_default_consents_with_offers_off(
    session: Session, clock: ManualClock
) -> None:
    customer = create_customer(session, name="李雷", consents={"survey": False}, clock=clock)
    assert get_consents(session, customer_id=customer.id) == {
        "care": True,
        "follow_up": True,
        "survey": False,
        "offer": False,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"phone": "123"},
        {"tier": "白金"},
        {"preferred_channel": "sms"},
        {"email": "nope"},
        {"timezone": "Mars/Base"},
        {"consents": {"spam": True}},
        {"name": "  "},
    ],
)
def test_create_customer_rejects_bad_input(session: Session, kwargs: dict) -> None:
    with pytest.raises(InvalidInput):
        create_customer(session, **{"name": "张三", **kwargs})


def test_duplicate_phone_is_a_conflict_and_leaves_the_session_usable(session: Session) -> None:
    create_customer(session, name="甲", phone="13800138000")
    with pytest.raises(Conflict):
        create_customer(session, name="乙", phone="138 0013 8000")
    assert find_customer(session, phone="13800138000").name == "甲"


def test_get_missing_customer_raises_find_returns_none(session: Session) -> None:
    with pytest.raises(NotFound):
        get_customer(session, customer_id=999_999)
    assert find_customer(session, phone="13900000000") is None


def test_search_and_list_customers(session: Session) -> None:
    a = create_customer(session, name="王小明", phone="13800138000", tier="银卡")
    b = create_customer(session, name="王大明", phone="13900139000")
    assert [c.id for c in search_customers(session, text="王")] == [a.id, b.id]
    assert [c.id for c in search_customers(session, text="139")] == [b.id]
    assert [c.id for c in list_customers(session, tier="银卡")] == [a.id]


def test_update_customer_changes_fields_and_is_audited(
    session: Session, clock: ManualClock
) -> None:
    customer = create_customer(session, name="王小明", tier="普通", clock=clock)
    updated = update_customer(
        session, customer_id=customer.id, actor="staff:1", tier="金卡", clock=clock
    )
    assert updated.tier == "金卡"
    [entry] = list_audit_entries(session, entity="customer", entity_id=customer.id)
    assert (entry.actor, entry.action, entry.changes) == (
        "staff:1",
        "update_customer",
        {"tier": ["普通", "金卡"]},
    )


def test_update_customer_to_a_taken_phone_is_a_conflict(session: Session) -> None:
    create_customer(session, name="甲", phone="13800138000")
    other = create_customer(session, name="乙", phone="13900139000")
    with pytest.raises(Conflict):
        update_customer(session, customer_id=other.id, actor="staff:1", phone="13800138000")
    assert get_customer(session, customer_id=other.id).phone == "13900139000"


def test_set_consent_is_audited_only_on_change(session: Session, clock: ManualClock) -> None:
    customer = create_customer(session, name="甲", clock=clock)
    consents = set_consent(
        session, customer_id=customer.id, category="offer", granted=True, source="chat", clock=clock
    )
    set_consent(session, customer_id=customer.id, category="offer", granted=True, source="chat")
    assert consents["offer"] is True
    assert len(list_audit_entries(session, entity="customer", entity_id=customer.id)) == 1
    with pytest.raises(InvalidInput):
        set_consent(session, customer_id=customer.id, category="spam", granted=True, source="chat")


def test_touch_customer_sets_last_active(session: Session, clock: ManualClock) -> None:
    customer = create_customer(session, name="甲", clock=clock)
    clock.advance(timedelta(hours=1))
    touch_customer(session, customer_id=customer.id, clock=clock)
    session.expire_all()
    assert get_customer(session, customer_id=customer.id).last_active_at == clock()


@pytest.mark.parametrize(
    ("local", "expected"),
    [(time(21, 59), False), (time(22, 0), True), (time(3, 0), True), (time(8, 0), False)],
)
def test_quiet_hours_wrap_midnight(local: time, expected: bool) -> None:
    assert in_quiet_hours(local, time(22), time(8)) is expected


def test_may_contact_needs_consent_and_respects_local_quiet_hours(session: Session) -> None:
    customer = create_customer(session, name="甲", timezone="Asia/Shanghai")
    consents = get_consents(session, customer_id=customer.id)
    noon_shanghai = datetime(2026, 11, 2, 4, 0, tzinfo=timezone.utc)
    night_shanghai = datetime(2026, 11, 2, 15, 0, tzinfo=timezone.utc)  # 23:00 local
    assert may_contact(customer, consents, "care", noon_shanghai)
    assert not may_contact(customer, consents, "care", night_shanghai)
    assert not may_contact(customer, consents, "offer", noon_shanghai)


def test_next_birthday_gregorian_and_29_february() -> None:
    from crm_store.customers import Customer

    base = Customer(
        1,
        "甲",
        None,
        None,
        date(1996, 2, 29),
        None,
        False,
        "普通",
        0,
        "web",
        "Asia/Shanghai",
        None,
        None,
        datetime(2026, 1, 1, tzinfo=timezone.utc),
        None,
    )
    assert next_birthday(base, date(2026, 3, 1)) == date(2027, 2, 28)
    assert next_birthday(base, date(2026, 2, 1)) == date(2026, 2, 28)


def test_lunar_birthday_moves_with_the_lunar_calendar(session: Session) -> None:
    # 八月十五 (Mid-Autumn) fell on 2025-10-06 and falls on 2026-09-25.
    assert lunar_to_solar(LunarBirthday(8, 15), 2025) == date(2025, 10, 6)
    customer = create_customer(
        session, name="甲", birthday=date(1980, 9, 1), lunar_birthday=LunarBirthday(8, 15)
    )
    assert next_birthday(customer, date(2026, 1, 1)) == date(2026, 9, 25)
    assert next_birthday(customer, date(2026, 9, 26)) == date(2027, 9, 15)


def test_list_birthdays_finds_gregorian_and_lunar_celebrants(session: Session) -> None:
    solar = create_customer(session, name="甲", birthday=date(1990, 9, 25))
    lunar = create_customer(
        session, name="乙", birthday=date(1985, 3, 3), lunar_birthday=LunarBirthday(8, 15)
    )
    create_customer(session, name="丙", birthday=date(1990, 9, 26))
    found = list_birthdays(session, on=date(2026, 9, 25))
    assert sorted(c.id for c in found) == sorted([solar.id, lunar.id])
    set_birthday(session, customer_id=lunar.id, birthday=date(1985, 3, 3))
    assert [c.id for c in list_birthdays(session, on=date(2026, 3, 3))] == [lunar.id]
