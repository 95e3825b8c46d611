from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from crm_helpers import a_customer, empty_all_tables, run_concurrently
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.clock import ManualClock
from crm_store.db import session_scope
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.models import Customer as CustomerRow
from crm_store.points import (
    POINTS_VALID_DAYS,
    customers_with_points_to_expire,
    earn_points,
    expire_points,
    list_points_entries,
    points_balance,
    points_expiring_by,
    points_expiry_schedule,
    points_for_purchase,
    points_to_expire,
    reconcile_points,
    redeem_points,
)


@pytest.mark.parametrize(
    ("total_cents", "tier", "points"),
    [(39_900, "普通", 399), (39_900, "金卡", 598), (99, "钻石", 0), (100_050, "银卡", 1200)],
)
def test_points_for_purchase(total_cents: int, tier: str, points: int) -> None:
    assert points_for_purchase(total_cents, tier) == points


@pytest.mark.parametrize(
    ("expired_earned", "consumed", "due"), [(100, 30, 70), (100, 150, 0), (0, 0, 0)]
)
def test_points_to_expire_uses_oldest_points_first(
    expired_earned: int, consumed: int, due: int
) -> None:
    assert points_to_expire(expired_earned, consumed) == due


def test_earn_and_redeem_keep_ledger_and_balance_in_step(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session)
    earn_points(session, customer_id=customer.id, points=500, reason="order", clock=clock)
    entry = redeem_points(
        session, customer_id=customer.id, points=120, reason="coupon", clock=clock
    )
    assert (entry.delta, entry.balance_after) == (-120, 380)
    assert points_balance(session, customer_id=customer.id) == 380
    assert [e.kind for e in list_points_entries(session, customer_id=customer.id)] == [
        "redeem",
        "earn",
    ]


def test_redeeming_more_than_the_balance_is_refused(session: Session) -> None:
    customer = a_customer(session)
    earn_points(session, customer_id=customer.id, points=50, reason="order")
    with pytest.raises(Conflict):
        redeem_points(session, customer_id=customer.id, points=51, reason="coupon")
    assert points_balance(session, customer_id=customer.id) == 50


@pytest.mark.parametrize("points", [0, -5, 1.5, True])
def test_points_must_be_positive_integers(session: Session, points: int) -> None:
    customer = a_customer(session)
    with pytest.raises(InvalidInput):
        earn_points(session, customer_id=customer.id, points=points, reason="order")


def test_unknown_customer(session: Session) -> None:
    with pytest.raises(NotFound):
        earn_points(session, customer_id=999_999, points=5, reason="order")
    with pytest.raises(NotFound):
        points_balance(session, customer_id=999_999)


def test_expiry_takes_unspent_old_points_once(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session)
    earn_points(session, customer_id=customer.id, points=300, reason="order", clock=clock)
    clock.advance(timedelta(days=200))
    earn_points(session, customer_id=customer.id, points=100, reason="order", clock=clock)
    redeem_points(session, customer_id=customer.id, points=120, reason="coupon", clock=clock)
    clock.advance(timedelta(days=170))  # the first 300 expired, the later 100 not yet
    assert customers_with_points_to_expire(session, clock=clock) == [customer.id]
    entry = expire_points(session, customer_id=customer.id, clock=clock)
    assert entry is not None and (entry.delta, entry.balance_after) == (-180, 100)
    assert expire_points(session, customer_id=customer.id, clock=clock) is None
    assert customers_with_points_to_expire(session, clock=clock) == []


def test_reconcile_repairs_a_drifted_cache(session: Session) -> None:
    customer = a_customer(session)
    earn_points(session, customer_id=customer.id, points=70, reason="order")
    session.execute(update(CustomerRow).values(points_balance=999))
    assert reconcile_points(session, customer_id=customer.id) == 70
    assert points_balance(session, customer_id=customer.id) == 70


def test_concurrent_redemptions_never_double_spend(engine: Engine) -> None:
    """Two transactions redeem 80 of 100 points at the same moment: exactly one succeeds."""
    with session_scope(engine) as session:
        customer_id = a_customer(session).id
        earn_points(session, customer_id=customer_id, points=100, reason="order")
    barrier, outcomes = threading.Barrier(2), []

    def redeem() -> None:
        try:
            with session_scope(engine) as session:
                barrier.wait()
                redeem_points(session, customer_id=customer_id, points=80, reason="gift")
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=redeem) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with session_scope(engine) as session:
        assert sorted(outcomes) == ["conflict", "ok"]
        assert points_balance(session, customer_id=customer_id) == 20
        assert reconcile_points(session, customer_id=customer_id) == 20
    empty_all_tables(engine)


def test_a_redemption_waits_for_a_holding_transaction(engine: Engine) -> None:
    """The second spender blocks on the first one's lock, then sees the new balance."""
    with session_scope(engine) as session:
        customer_id = a_customer(session).id
        earn_points(session, customer_id=customer_id, points=100, reason="order")
    first_has_lock, release, outcome = threading.Event(), threading.Event(), []

    def first() -> None:
        with session_scope(engine) as session:
            redeem_points(session, customer_id=customer_id, points=80, reason="gift")
            first_has_lock.set()
            release.wait(10)

    def second() -> None:
        try:
            with session_scope(engine) as session:
                redeem_points(session, customer_id=customer_id, points=80, reason="gift")
            outcome.append("ok")
        except Conflict:
            outcome.append("conflict")

    holder = threading.Thread(target=first)
    holder.start()
    first_has_lock.wait(10)
    waiter = threading.Thread(target=second)
    waiter.start()
    waiter.join(timeout=0.5)
    assert waiter.is_alive(), "the second redemption should wait for the first transaction"
    release.set()
    holder.join(10)
    waiter.join(10)
    assert outcome == ["conflict"]
    empty_all_tables(engine)


def test_points_expiring_by_a_date_use_the_oldest_points_first(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session)
    earn_points(session, customer_id=customer.id, points=500, reason="order", clock=clock)
    clock.advance(timedelta(days=100))
    earn_points(session, customer_id=customer.id, points=300, reason="order", clock=clock)
    redeem_points(session, customer_id=customer.id, points=200, reason="coupon", clock=clock)
    first_expiry = clock.now + timedelta(days=POINTS_VALID_DAYS - 100)
    second_expiry = clock.now + timedelta(days=POINTS_VALID_DAYS)

    def expiring(until: datetime) -> int:
        return points_expiring_by(session, customer_id=customer.id, until=until)

    assert expiring(first_expiry - timedelta(days=1)) == 0
    assert expiring(first_expiry) == 300
    assert expiring(second_expiry) == 600


def test_the_expiry_schedule_names_each_batchs_own_date_after_spending(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session)
    first = clock.now + timedelta(days=POINTS_VALID_DAYS)
    earn_points(session, customer_id=customer.id, points=100, reason="order", clock=clock)
    clock.advance(timedelta(days=10))
    earn_points(session, customer_id=customer.id, points=250, reason="order", clock=clock)
    redeem_points(session, customer_id=customer.id, points=150, reason="coupon", clock=clock)
    second = first + timedelta(days=10)

    def schedule(until: datetime) -> list[tuple[datetime, int]]:
        entries = points_expiry_schedule(session, customer_id=customer.id, until=until)
        return [(entry.expires_at, entry.points) for entry in entries]

    assert schedule(first + timedelta(days=5)) == []  # the first 100 are spent
    assert schedule(second) == [(second, 200)]
    clock.advance(timedelta(days=POINTS_VALID_DAYS))  # past both: nothing written off yet
    expire_points(session, customer_id=customer.id, clock=clock)
    assert schedule(second) == []


def _ledger(engine: Engine, customer_id: int) -> list[tuple[str, int, str | None]]:
    with session_scope(engine) as session:
        entries = list_points_entries(session, customer_id=customer_id, limit=100)
    return [(entry.kind, entry.delta, entry.idempotency_key) for entry in reversed(entries)]


def test_a_keyed_grant_is_credited_once_per_key(session: Session) -> None:
    customer = a_customer(session)
    first = earn_points(
        session,
        customer_id=customer.id,
        points=300,
        reason="birthday_gift:2026",
        idempotency_key="birthday_gift:2026",
    )
    again = earn_points(
        session,
        customer_id=customer.id,
        points=300,
        reason="birthday_gift:2026",
        idempotency_key="birthday_gift:2026",
    )
    assert again == first and first.idempotency_key == "birthday_gift:2026"
    earn_points(
        session,
        customer_id=customer.id,
        points=300,
        reason="birthday_gift:2027",
        idempotency_key="birthday_gift:2027",
    )
    other = a_customer(session, name="李娜")  # a key is the customer's own
    earn_points(
        session,
        customer_id=other.id,
        points=300,
        reason="birthday_gift:2026",
        idempotency_key="birthday_gift:2026",
    )
    assert points_balance(session, customer_id=customer.id) == 600
    assert points_balance(session, customer_id=other.id) == 300
    assert reconcile_points(session, customer_id=customer.id) == 600


def test_a_retried_redemption_returns_the_first_spend_even_when_the_balance_is_now_short(
    session: Session,
) -> None:
    customer = a_customer(session)
    earn_points(session, customer_id=customer.id, points=100, reason="order")
    first = redeem_points(
        session, customer_id=customer.id, points=80, reason="coupon", idempotency_key="redeem:a"
    )
    retry = redeem_points(
        session, customer_id=customer.id, points=80, reason="coupon", idempotency_key="redeem:a"
    )
    assert retry == first and (first.delta, first.balance_after) == (-80, 20)
    with pytest.raises(Conflict):  # a new redemption is a new spend, refused on its own merits
        redeem_points(
            session, customer_id=customer.id, points=80, reason="coupon", idempotency_key="redeem:b"
        )
    assert points_balance(session, customer_id=customer.id) == 20


def test_a_new_redemption_key_spends_again(session: Session) -> None:
    customer = a_customer(session)
    earn_points(session, customer_id=customer.id, points=200, reason="order")
    for key in ("redeem:a", "redeem:b", "redeem:a", "redeem:b"):
        redeem_points(
            session, customer_id=customer.id, points=80, reason="coupon", idempotency_key=key
        )
    assert points_balance(session, customer_id=customer.id) == 40
    with pytest.raises(InvalidInput):
        redeem_points(
            session, customer_id=customer.id, points=1, reason="coupon", idempotency_key="x" * 65
        )


@pytest.mark.parametrize("balance", [100, 200])  # enough for one spend, enough for both
def test_concurrent_retries_of_one_redemption_spend_once(committing: Engine, balance: int) -> None:
    """The first spend outlived Rasa's timeout and the retry arrives while it still runs: both
    get the one spend, whether or not the balance would have covered a second."""
    with session_scope(committing) as session:
        customer_id = a_customer(session).id
        earn_points(session, customer_id=customer_id, points=balance, reason="order")

    def redeem() -> int:
        with session_scope(committing) as session:
            entry = redeem_points(
                session,
                customer_id=customer_id,
                points=80,
                reason="coupon",
                idempotency_key="redeem:once",
            )
        return entry.id

    first, second = run_concurrently(redeem, redeem)
    assert first == second
    assert _ledger(committing, customer_id) == [
        ("earn", balance, None),
        ("redeem", -80, "redeem:once"),
    ]
    with session_scope(committing) as session:
        assert points_balance(session, customer_id=customer_id) == balance - 80
        assert reconcile_points(session, customer_id=customer_id) == balance - 80


def test_concurrent_birthday_grants_credit_once(committing: Engine) -> None:
    """Two paths credit the year's birthday gift at the same moment: one ledger entry."""
    with session_scope(committing) as session:
        customer_id = a_customer(session).id

    def grant() -> int:
        with session_scope(committing) as session:
            return earn_points(
                session,
                customer_id=customer_id,
                points=300,
                reason="birthday_gift:2026",
                idempotency_key="birthday_gift:2026",
            ).id

    assert len(set(run_concurrently(grant, grant, grant))) == 1
    assert _ledger(committing, customer_id) == [("earn", 300, "birthday_gift:2026")]
    with session_scope(committing) as session:
        assert points_balance(session, customer_id=customer_id) == 300


def test_a_retry_waits_for_the_running_spend_and_returns_it(committing: Engine) -> None:
    with session_scope(committing) as session:
        customer_id = a_customer(session).id
        earn_points(session, customer_id=customer_id, points=500, reason="order")
    spent, release, entries = threading.Event(), threading.Event(), []

    def redeem(hold: bool) -> None:
        with session_scope(committing) as session:
            entry = redeem_points(
                session,
                customer_id=customer_id,
                points=300,
                reason="coupon",
                idempotency_key="redeem:slow",
            )
            if hold:
                spent.set()
                release.wait(10)
        entries.append(entry)

    first = threading.Thread(target=redeem, args=(True,))
    first.start()
    assert spent.wait(10)
    retry = threading.Thread(target=redeem, args=(False,))
    retry.start()
    retry.join(timeout=0.5)
    assert retry.is_alive(), "the retry should wait for the running spend"
    release.set()
    first.join(10)
    retry.join(10)
    assert len(entries) == 2 and entries[0] == entries[1]
    with session_scope(committing) as session:
        assert points_balance(session, customer_id=customer_id) == 200
