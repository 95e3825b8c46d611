"""One-time login codes: only digests stored, counted for the limits, checked atomically."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from functools import partial

import pytest
from crm_helpers import NOW, a_customer, empty_all_tables, run_concurrently
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.clock import Clock, ManualClock
from crm_store.db import session_scope
from crm_store.errors import InvalidInput
from crm_store.login_codes import (
    SECRET_VARIABLE,
    CodeCheck,
    IssuedCode,
    SpentCode,
    check_login_code,
    count_login_codes,
    hold_phone,
    issue_login_code,
    login_code_verified,
    phone_key,
    phone_key_secret,
    purge_login_codes,
    spent_login_codes,
)
from crm_store.models import LoginCode

PHONE, OTHER_PHONE = "13800138000", "13912345678"
CODE = "482913"
SECRET = "a-test-secret-of-some-length"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)


def _issue(
    session: Session,
    clock: ManualClock,
    *,
    phone: str = PHONE,
    client: str = "web-a",
    customer_id: int | None = None,
    code: str = CODE,
) -> IssuedCode:
    return issue_login_code(
        session,
        phone=phone,
        client=client,
        customer_id=customer_id,
        code=code,
        valid_for=timedelta(minutes=5),
        attempts=3,
        clock=clock,
    )


def _check(
    session: Session, clock: Clock, code_id: int, code: str | None, client: str = "web-a"
) -> CodeCheck:
    return check_login_code(session, code_id=code_id, client=client, code=code, clock=clock)


def test_only_digests_are_stored(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session, phone=PHONE)
    issued = _issue(session, clock, customer_id=customer.id)
    row = session.get(LoginCode, issued.id)
    assert row is not None
    stored = " ".join(str(value) for value in vars(row).values())
    assert CODE not in stored and PHONE not in stored
    assert row.digest == hashlib.sha256(f"{row.salt}:{CODE}".encode()).hexdigest()
    assert len(row.salt) == 32 and len(row.phone_key) == 64
    expected = hmac.new(SECRET.encode(), PHONE.encode(), hashlib.sha256).hexdigest()
    assert row.phone_key == expected == phone_key("+86 138-0013-8000", SECRET.encode())
    assert (issued.expires_at, issued.attempts_left) == (clock() + timedelta(minutes=5), 3)
    assert row.customer_id == customer.id and row.client == "web-a" and row.used_at is None


def test_the_key_needs_the_secret(
    session: Session, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_secret = phone_key(PHONE, phone_key_secret(session))
    monkeypatch.setenv(SECRET_VARIABLE, "another-secret-entirely")
    assert phone_key(PHONE, phone_key_secret(session)) != with_secret
    monkeypatch.delenv(SECRET_VARIABLE)
    fallback = phone_key_secret(session)
    assert fallback == phone_key_secret(session)  # stable for this database
    assert phone_key(PHONE, fallback) not in (
        with_secret,
        hashlib.sha256(PHONE.encode()).hexdigest(),
    )


@pytest.mark.parametrize(
    "kwargs",
    [{"phone": "12345"}, {"code": "12a456"}, {"code": "１２３４５６"}, {"client": " "}],
)
def test_bad_input_is_refused(session: Session, clock: ManualClock, kwargs: dict) -> None:
    with pytest.raises(InvalidInput):
        _issue(session, clock, **kwargs)


def test_codes_are_counted_per_phone_client_and_overall(
    session: Session, clock: ManualClock
) -> None:
    start = clock()
    _issue(session, clock, client="web-a")
    clock.advance(timedelta(minutes=10))
    _issue(session, clock, client="web-b")
    _issue(session, clock, phone=OTHER_PHONE, client="web-b")
    later = clock()

    def count(**kwargs: str) -> tuple[int, int]:
        return (
            count_login_codes(session, since=start, **kwargs),
            count_login_codes(session, since=later, **kwargs),
        )

    assert count(phone=PHONE) == (2, 1)
    assert count(phone="+86 13800138000") == (2, 1)
    assert count(phone=OTHER_PHONE) == (1, 1)
    assert count(client="web-a") == (1, 0)
    assert count(client="web-b") == (2, 2)
    assert count(phone=PHONE, client="web-b") == (1, 1)
    assert count() == (3, 2)


def test_the_right_code_identifies_its_customer_once(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session, phone=PHONE)
    issued = _issue(session, clock, customer_id=customer.id)
    clock.advance(timedelta(minutes=4, seconds=59))
    assert _check(session, clock, issued.id, CODE) == CodeCheck("ok", 3, customer.id)
    assert _check(session, clock, issued.id, CODE) == CodeCheck("used")
    assert spent_login_codes(session, phone=PHONE, since=issued.created_at) == [
        SpentCode(clock(), verified=True)
    ]


def test_wrong_answers_spend_the_attempts(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session, phone=PHONE)
    issued = _issue(session, clock, customer_id=customer.id)
    verdicts = [_check(session, clock, issued.id, answer) for answer in ("000000", None)]
    assert verdicts == [CodeCheck("wrong", 2), CodeCheck("wrong", 1)]
    clock.advance(timedelta(minutes=1))
    assert _check(session, clock, issued.id, "111111") == CodeCheck("locked")
    assert _check(session, clock, issued.id, CODE) == CodeCheck("locked")  # too late
    assert spent_login_codes(session, phone=PHONE, since=issued.created_at) == [
        SpentCode(clock(), verified=False)
    ]


def test_the_right_code_on_the_last_attempt_still_counts(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session, phone=PHONE)
    issued = _issue(session, clock, customer_id=customer.id)
    _check(session, clock, issued.id, "000000")
    _check(session, clock, issued.id, "000000")
    assert _check(session, clock, issued.id, CODE) == CodeCheck("ok", 1, customer.id)
    assert [c.verified for c in spent_login_codes(session, phone=PHONE, since=clock())] == [True]


def test_an_expired_code_fails_without_spending_an_attempt(
    session: Session, clock: ManualClock
) -> None:
    customer = a_customer(session, phone=PHONE)
    issued = _issue(session, clock, customer_id=customer.id)
    clock.advance(timedelta(minutes=5))
    assert _check(session, clock, issued.id, CODE) == CodeCheck("expired", 3)
    assert spent_login_codes(session, phone=PHONE, since=issued.created_at) == []


def test_a_code_for_nobody_never_matches(session: Session, clock: ManualClock) -> None:
    issued = _issue(session, clock, customer_id=None)
    verdicts = [_check(session, clock, issued.id, CODE) for _ in range(3)]
    assert verdicts == [CodeCheck("wrong", 2), CodeCheck("wrong", 1), CodeCheck("locked")]


def test_another_client_or_id_finds_nothing(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session, phone=PHONE)
    issued = _issue(session, clock, customer_id=customer.id, client="web-a")
    assert _check(session, clock, issued.id, CODE, client="web-b") == CodeCheck("missing")
    assert _check(session, clock, issued.id + 1000, CODE) == CodeCheck("missing")
    assert _check(session, clock, issued.id, CODE).verdict == "ok"  # nothing was spent


def test_spent_codes_since(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session, phone=PHONE)
    first = _issue(session, clock, customer_id=customer.id)
    for _ in range(3):
        _check(session, clock, first.id, "000000")
    exhausted_at = clock()
    clock.advance(timedelta(hours=1))
    second = _issue(session, clock, customer_id=customer.id)
    _check(session, clock, second.id, CODE)
    other = _issue(session, clock, phone=OTHER_PHONE)
    for _ in range(3):
        _check(session, clock, other.id, "000000")
    assert spent_login_codes(session, phone=PHONE, since=exhausted_at) == [
        SpentCode(exhausted_at, verified=False),
        SpentCode(clock(), verified=True),
    ]
    assert spent_login_codes(session, phone=PHONE, since=clock()) == [SpentCode(clock(), True)]


def test_a_verified_code_is_recognised_for_its_phone_client_and_customer(
    session: Session, clock: ManualClock
) -> None:
    customer, other = a_customer(session, phone=PHONE), a_customer(session, name="李娜")
    issued = _issue(session, clock, phone=OTHER_PHONE, customer_id=customer.id)

    def verified(**kwargs: object) -> bool:
        arguments: dict = {
            "code_id": issued.id,
            "phone": OTHER_PHONE,
            "client": "web-a",
            "customer_id": customer.id,
            "since": clock() - timedelta(minutes=15),
            **kwargs,
        }
        return login_code_verified(session, **arguments)

    assert not verified()  # not answered yet
    _check(session, clock, issued.id, CODE)
    assert verified()
    assert not verified(phone=PHONE)
    assert not verified(client="web-b")
    assert not verified(customer_id=other.id)
    assert not verified(code_id=issued.id + 1)
    assert not verified(since=clock() + timedelta(seconds=1))


def test_an_exhausted_code_is_not_verified(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session, phone=PHONE)
    issued = _issue(session, clock, customer_id=customer.id)
    for _ in range(3):
        _check(session, clock, issued.id, "000000")
    assert not login_code_verified(
        session,
        code_id=issued.id,
        phone=PHONE,
        client="web-a",
        customer_id=customer.id,
        since=clock() - timedelta(hours=1),
    )


def test_purge_deletes_what_expired_before(session: Session, clock: ManualClock) -> None:
    old = _issue(session, clock)
    clock.advance(timedelta(days=1))
    recent = _issue(session, clock)
    assert purge_login_codes(session, expired_before=clock() - timedelta(hours=1)) == 1
    assert session.scalars(select(LoginCode.id)).all() == [recent.id]
    assert old.id != recent.id
    assert purge_login_codes(session, expired_before=clock() - timedelta(hours=1)) == 0


def test_holding_a_phone_works_on_both_databases(session: Session, clock: ManualClock) -> None:
    hold_phone(session, phone=PHONE)
    hold_phone(session, phone=PHONE)  # the same transaction may hold it again
    assert _issue(session, clock).id > 0


def _committed_code(engine: Engine, clock: ManualClock, customer_id: int | None = None) -> int:
    with session_scope(engine) as session:
        if customer_id is None:
            customer_id = a_customer(session, phone=PHONE).id
        return _issue(session, clock, customer_id=customer_id).id


def _answer(engine: Engine, clock: ManualClock, code_id: int, code: str) -> str:
    with session_scope(engine) as session:
        return _check(session, clock, code_id, code).verdict


def test_concurrent_guesses_get_no_more_than_the_attempts(engine: Engine) -> None:
    clock = ManualClock(NOW)
    try:
        code_id = _committed_code(engine, clock)
        verdicts = run_concurrently(*[partial(_answer, engine, clock, code_id, "000000")] * 8)
        assert sorted(verdicts) == ["locked"] * 6 + ["wrong"] * 2
        assert _answer(engine, clock, code_id, CODE) == "locked"
    finally:
        empty_all_tables(engine)


def test_concurrent_right_answers_verify_once(engine: Engine) -> None:
    clock = ManualClock(NOW)
    try:
        code_id = _committed_code(engine, clock)
        verdicts = run_concurrently(*[partial(_answer, engine, clock, code_id, CODE)] * 4)
        assert sorted(verdicts) == ["ok", "used", "used", "used"]
    finally:
        empty_all_tables(engine)


def test_phone_holders_wait_for_each_other(engine: Engine) -> None:
    """Count-then-issue under `hold_phone` keeps a per-phone limit of 1 exact under a race."""
    clock = ManualClock(NOW)

    def issue_if_none() -> bool:
        with session_scope(engine) as session:
            hold_phone(session, phone=PHONE)
            if count_login_codes(session, since=clock() - timedelta(hours=1), phone=PHONE):
                return False
            _issue(session, clock)
            return True

    try:
        assert sorted(run_concurrently(*[issue_if_none] * 4)) == [False, False, False, True]
    finally:
        empty_all_tables(engine)
