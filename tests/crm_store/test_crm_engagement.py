"""Offers and coupons, campaigns, the care-message outbox, tags and segments, staff."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest
from crm_helpers import a_customer, empty_all_tables, run_concurrently
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.audit import list_audit_entries
from crm_store.campaigns import (
    campaign_totals,
    create_campaign,
    get_campaign,
    is_running,
    list_campaigns,
    set_campaign_status,
)
from crm_store.clock import ManualClock
from crm_store.db import session_scope
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.models import StaffUser
from crm_store.offers import (
    Offer,
    create_offer,
    discount_cents,
    expire_coupons,
    find_coupon,
    issue_coupon,
    list_coupons,
    redeem_coupon,
)
from crm_store.outbox import (
    MAX_ATTEMPTS,
    claim_due_messages,
    count_sent_since,
    enqueue_care_message,
    list_care_messages,
    mark_failed,
    mark_sent,
    mark_skipped,
)
from crm_store.segments import (
    create_segment,
    list_tagged_customers,
    list_tags,
    segment_size,
    tag_customer,
    untag_customer,
)
from crm_store.staff import (
    authenticate_staff,
    create_staff_user,
    deactivate_staff_user,
    find_staff_user,
    list_staff_users,
    needs_rehash,
    password_matches,
    set_staff_role,
)


def _offer(kind: str, value: int, min_spend: int = 0) -> Offer:
    return Offer(1, "k", "n", kind, value, min_spend, 30, True)


@pytest.mark.parametrize(
    ("offer", "total", "discount"),
    [
        (_offer("amount_off", 5_000), 39_900, 5_000),
        (_offer("amount_off", 5_000), 3_000, 3_000),
        (_offer("percent_off", 15), 39_900, 5_985),
        (_offer("amount_off", 5_000, 20_000), 19_999, 0),
        (_offer("points", 100), 39_900, 0),
    ],
)
def test_discount_cents(offer: Offer, total: int, discount: int) -> None:
    assert discount_cents(offer, total) == discount


def test_one_coupon_per_customer_per_offer(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    create_offer(
        session,
        key="winback50",
        name="回归礼",
        kind="amount_off",
        value=5_000,
        valid_days=30,
        clock=clock,
    )
    first = issue_coupon(session, offer_key="winback50", customer_id=customer.id, clock=clock)
    assert issue_coupon(session, offer_key="winback50", customer_id=customer.id) == first
    assert first.expires_at == clock() + timedelta(days=30) and len(first.code) == 10
    assert find_coupon(session, code=first.code.lower()) == first


def test_redeem_coupon_once_and_not_after_expiry(session: Session, clock: ManualClock) -> None:
    alice, bob = a_customer(session, "甲"), a_customer(session, "乙")
    create_offer(session, key="o", name="券", kind="percent_off", value=10, valid_days=7)
    coupon = issue_coupon(session, offer_key="o", customer_id=alice.id, clock=clock)
    with pytest.raises(NotFound):
        redeem_coupon(session, code=coupon.code, customer_id=bob.id, clock=clock)
    redeemed = redeem_coupon(session, code=coupon.code, customer_id=alice.id, clock=clock)
    assert (redeemed.status, redeemed.redeemed_at) == ("redeemed", clock())
    with pytest.raises(Conflict):
        redeem_coupon(session, code=coupon.code, customer_id=alice.id, clock=clock)
    late = issue_coupon(session, offer_key="o", customer_id=bob.id, clock=clock)
    clock.advance(timedelta(days=8))
    with pytest.raises(Conflict):
        redeem_coupon(session, code=late.code, customer_id=bob.id, clock=clock)
    assert expire_coupons(session, clock=clock) == 1
    assert [c.status for c in list_coupons(session, customer_id=bob.id)] == ["expired"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "free_lunch"},
        {"value": 0},
        {"kind": "percent_off", "value": 100},
        {"valid_days": 0},
        {"min_spend_cents": -1},
    ],
)
def test_create_offer_rejects_bad_input(session: Session, kwargs: dict) -> None:
    with pytest.raises(InvalidInput):
        create_offer(
            session,
            **{
                "key": "k",
                "name": "n",
                "kind": "amount_off",
                "value": 100,
                "valid_days": 30,
                **kwargs,
            },
        )


def test_concurrent_coupon_redemptions_never_double_spend(engine: Engine) -> None:
    with session_scope(engine) as session:
        customer_id = a_customer(session).id
        create_offer(session, key="o", name="券", kind="amount_off", value=100, valid_days=7)
        code = issue_coupon(session, offer_key="o", customer_id=customer_id).code
    barrier, outcomes = threading.Barrier(2), []

    def redeem() -> None:
        try:
            with session_scope(engine) as session:
                barrier.wait()
                redeem_coupon(session, code=code, customer_id=customer_id)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=redeem) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["conflict", "ok"]
    empty_all_tables(engine)


def test_campaign_lifecycle_and_results(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    create_offer(session, key="bday", name="生日券", kind="amount_off", value=2_000, valid_days=30)
    campaign = create_campaign(
        session,
        key="birthday-2026",
        name="生日关怀",
        kind="birthday",
        category="care",
        offer_key="bday",
        clock=clock,
    )
    assert is_running(campaign, clock())
    with pytest.raises(Conflict):
        create_campaign(session, key="birthday-2026", name="x", kind="birthday", category="care")
    with pytest.raises(InvalidInput):
        create_campaign(session, key="k2", name="x", kind="birthday", category="spam")
    message, _ = enqueue_care_message(
        session,
        customer_id=customer.id,
        campaign_key="birthday-2026",
        period="2026",
        channel="wechat",
        clock=clock,
    )
    mark_sent(session, message_id=message.id, clock=clock)
    issue_coupon(session, offer_key="bday", customer_id=customer.id)
    results = campaign_totals(session, key="birthday-2026")
    assert results.messages["sent"] == 1 and results.messages["pending"] == 0
    assert (results.coupons_issued, results.coupons_redeemed) == (1, 0)
    paused = set_campaign_status(session, key="birthday-2026", status="paused", actor="staff:1")
    assert not is_running(paused, clock())
    assert get_campaign(session, key="birthday-2026") == paused
    assert list_campaigns(session, status="active") == []
    assert list_audit_entries(session, entity="campaign")[0].changes == {
        "status": ["active", "paused"]
    }


def test_outbox_keeps_one_row_per_customer_campaign_period(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session)
    create_campaign(session, key="tips", name="养护贴士", kind="care_tip", category="care")
    first, created = enqueue_care_message(
        session,
        customer_id=customer.id,
        campaign_key="tips",
        period="2026-11",
        channel="web",
        clock=clock,
    )
    again, created_again = enqueue_care_message(
        session,
        customer_id=customer.id,
        campaign_key="tips",
        period="2026-11",
        channel="web",
        clock=clock,
    )
    assert (created, created_again, again) == (True, False, first)
    _, next_month = enqueue_care_message(
        session,
        customer_id=customer.id,
        campaign_key="tips",
        period="2026-12",
        channel="web",
        clock=clock,
    )
    assert next_month
    with pytest.raises(NotFound):
        enqueue_care_message(
            session, customer_id=customer.id, campaign_key="nope", period="p", channel="web"
        )


def test_outbox_claim_retry_and_give_up(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    create_campaign(session, key="tips", name="养护贴士", kind="care_tip", category="care")
    message, _ = enqueue_care_message(
        session,
        customer_id=customer.id,
        campaign_key="tips",
        period="2026-11",
        channel="wechat",
        scheduled_at=clock() + timedelta(hours=1),
        clock=clock,
    )
    assert claim_due_messages(session, clock=clock) == []
    clock.advance(timedelta(hours=1))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        [claimed] = claim_due_messages(session, clock=clock)
        assert (claimed.state, claimed.attempts) == ("sending", attempt)
        assert claim_due_messages(session, clock=clock) == []  # already being sent
        mark_failed(session, message_id=message.id, reason="48h window closed", clock=clock)
    assert claim_due_messages(session, clock=clock) == []
    assert list_care_messages(session, customer_id=customer.id)[0].reason == "48h window closed"


def test_parallel_claimers_share_the_due_messages_without_overlap(
    engine: Engine, clock: ManualClock
) -> None:
    """Two schedulers drain 50 due messages in small batches at the same time."""
    with session_scope(engine) as session:
        customer_id = a_customer(session).id
        create_campaign(session, key="tips", name="养护贴士", kind="care_tip", category="care")
        queued = {
            enqueue_care_message(
                session,
                customer_id=customer_id,
                campaign_key="tips",
                period=f"p{n}",
                channel="web",
                clock=clock,
            )[0].id
            for n in range(50)
        }

    def drain() -> list[list[int]]:
        batches: list[list[int]] = []
        while True:
            with session_scope(engine) as session:
                batch = claim_due_messages(session, clock=clock, limit=5)
            if not batch:
                return batches
            batches.append([message.id for message in batch])

    try:
        first_batches, second_batches = run_concurrently(drain, drain)
        assert max(len(batch) for batch in first_batches + second_batches) <= 5
        first = [message_id for batch in first_batches for message_id in batch]
        second = [message_id for batch in second_batches for message_id in batch]
        assert not set(first) & set(second)
        assert sorted(first + second) == sorted(queued)
        with session_scope(engine) as session:
            messages = list_care_messages(session, customer_id=customer_id, limit=100)
        assert {(m.state, m.attempts) for m in messages} == {("sending", 1)}
    finally:
        empty_all_tables(engine)


def test_claimed_messages_come_back_due_first(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    create_campaign(session, key="tips", name="养护贴士", kind="care_tip", category="care")
    for period, hours_ago in (("late", 1), ("early", 3), ("middle", 2)):
        enqueue_care_message(
            session,
            customer_id=customer.id,
            campaign_key="tips",
            period=period,
            channel="web",
            scheduled_at=clock() - timedelta(hours=hours_ago),
            clock=clock,
        )
    claimed = claim_due_messages(session, clock=clock, limit=2)
    assert [m.period for m in claimed] == ["early", "middle"]
    assert [m.period for m in claim_due_messages(session, clock=clock)] == ["late"]


def test_outbox_sent_and_skipped(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    create_campaign(session, key="tips", name="养护贴士", kind="care_tip", category="care")
    sent, _ = enqueue_care_message(
        session,
        customer_id=customer.id,
        campaign_key="tips",
        period="a",
        channel="web",
        clock=clock,
    )
    skipped, _ = enqueue_care_message(
        session,
        customer_id=customer.id,
        campaign_key="tips",
        period="b",
        channel="web",
        clock=clock,
    )
    claim_due_messages(session, clock=clock)
    mark_sent(session, message_id=sent.id, clock=clock)
    mark_skipped(session, message_id=skipped.id, reason="no consent", clock=clock)
    with pytest.raises(Conflict):
        mark_failed(session, message_id=sent.id, reason="late failure")
    assert (
        count_sent_since(session, customer_id=customer.id, since=clock() - timedelta(days=1)) == 1
    )
    assert [m.state for m in list_care_messages(session, campaign_key="tips", state="skipped")] == [
        "skipped"
    ]


def test_tags_are_idempotent(session: Session) -> None:
    customer = a_customer(session)
    tag_customer(session, customer_id=customer.id, tag="VIP")
    tag_customer(session, customer_id=customer.id, tag="VIP")
    tag_customer(session, customer_id=customer.id, tag="咖啡爱好者")
    assert list_tags(session, customer_id=customer.id) == ["VIP", "咖啡爱好者"]
    assert list_tagged_customers(session, tag="VIP") == [customer.id]
    untag_customer(session, customer_id=customer.id, tag="VIP")
    assert list_tags(session, customer_id=customer.id) == ["咖啡爱好者"]
    with pytest.raises(NotFound):
        tag_customer(session, customer_id=999_999, tag="VIP")


def test_segments_have_unique_keys(session: Session) -> None:
    create_segment(session, key="at_risk", name="流失风险")
    with pytest.raises(Conflict):
        create_segment(session, key="at_risk", name="again")
    assert segment_size(session, key="at_risk") == 0
    with pytest.raises(NotFound):
        segment_size(session, key="nope")


def test_staff_users_roles_and_login(session: Session) -> None:
    agent = create_staff_user(
        session, username="Zhang", display_name="小张", role="agent", password="correct horse"
    )
    with pytest.raises(Conflict):
        create_staff_user(session, username="zhang", display_name="又一个", role="agent")
    with pytest.raises(InvalidInput):
        create_staff_user(session, username="li", display_name="小李", role="boss")
    with pytest.raises(InvalidInput):
        create_staff_user(
            session, username="li", display_name="小李", role="agent", password="short"
        )
    assert authenticate_staff(session, username="zhang", password="correct horse") == agent
    assert authenticate_staff(session, username="zhang", password="wrong horse!") is None
    promoted = set_staff_role(session, staff_id=agent.id, role="supervisor", actor="staff:0")
    assert find_staff_user(session, username="ZHANG") == promoted
    assert [s.role for s in list_staff_users(session)] == ["supervisor"]
    deactivate_staff_user(session, staff_id=agent.id, actor="staff:0")
    assert authenticate_staff(session, username="zhang", password="correct horse") is None
    assert {e.action for e in list_audit_entries(session, entity="staff_user")} == {
        "set_staff_role",
        "deactivate_staff_user",
    }


def test_passwords_are_argon2id_and_a_legacy_hash_is_upgraded_at_login(session: Session) -> None:
    agent = create_staff_user(
        session, username="wang", display_name="小王", role="agent", password="correct horse"
    )
    row = session.get(StaffUser, agent.id)
    assert row is not None and row.password_hash.startswith("$argon2id$")
    assert not password_matches("correct horsf", row.password_hash)
    salt = "0" * 32
    digest = hashlib.pbkdf2_hmac("sha256", b"correct horse", salt.encode(), 200_000).hex()
    row.password_hash = f"pbkdf2_sha256$200000${salt}${digest}"  # as issue 3 stored them
    session.flush()
    assert authenticate_staff(session, username="wang", password="wrong horse!") is None
    assert row.password_hash.startswith("pbkdf2_sha256$")  # a failed login changes nothing
    assert authenticate_staff(session, username="wang", password="correct horse") == agent
    assert row.password_hash.startswith("$argon2id$") and not needs_rehash(row.password_hash)
    assert authenticate_staff(session, username="wang", password="correct horse") == agent
