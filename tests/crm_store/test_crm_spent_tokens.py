"""Single-use tokens on SQLite and PostgreSQL: spent once, refused while unexpired, even when
several transactions spend the same token at the same moment."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from crm_helpers import NOW, empty_all_tables, run_concurrently
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.clock import ManualClock, fixed
from crm_store.db import session_scope
from crm_store.errors import InvalidInput
from crm_store.models import SpentToken
from crm_store.spent_tokens import purge_spent_tokens, spend_token, token_is_spent

LATER = NOW + timedelta(minutes=30)


def spend(session: Session, clock: ManualClock, key: str = "mac-1", scope: str = "link") -> bool:
    return spend_token(session, scope=scope, key=key, expires_at=LATER, clock=clock)


def test_a_token_is_spent_once(session: Session, clock: ManualClock) -> None:
    assert spend(session, clock) is True
    assert spend(session, clock) is False
    session.commit()
    assert spend(session, clock) is False


def test_scopes_and_keys_are_separate(session: Session, clock: ManualClock) -> None:
    assert spend(session, clock, "mac-1", "link")
    assert spend(session, clock, "mac-1", "wechat-nonce")
    assert spend(session, clock, "mac-2", "link")
    assert not spend(session, clock, "mac-2", "link")


def test_a_token_counts_until_and_including_its_expiry(
    session: Session, clock: ManualClock
) -> None:
    assert spend(session, clock)
    clock.advance(LATER - NOW)
    assert not spend(session, clock)
    clock.advance(timedelta(seconds=1))
    assert spend(session, clock)  # expired: spendable again


def test_whether_a_token_is_spent_is_read_without_spending_it(
    session: Session, clock: ManualClock
) -> None:
    assert not token_is_spent(session, scope="link", key="mac-1", clock=clock)
    assert not token_is_spent(session, scope="link", key="mac-1", clock=clock)
    spend(session, clock)
    assert token_is_spent(session, scope="link", key="mac-1", clock=clock)
    assert not token_is_spent(session, scope="other", key="mac-1", clock=clock)
    clock.advance(LATER - NOW + timedelta(seconds=1))
    assert not token_is_spent(session, scope="link", key="mac-1", clock=clock)


def test_an_expired_spend_is_replaced_by_the_new_expiry(
    session: Session, clock: ManualClock
) -> None:
    spend_token(session, scope="s", key="k", expires_at=NOW, clock=clock)
    clock.advance(timedelta(hours=1))
    later = NOW + timedelta(hours=2)
    assert spend_token(session, scope="s", key="k", expires_at=later, clock=clock)
    assert session.scalars(select(SpentToken.expires_at)).one() == later


def test_a_rolled_back_spend_is_undone(engine: Engine, clock: ManualClock) -> None:
    try:
        with pytest.raises(RuntimeError), session_scope(engine) as session:
            assert spend(session, clock)
            raise RuntimeError("the caller's transaction fails")
        with session_scope(engine) as session:
            assert spend(session, clock)
    finally:
        empty_all_tables(engine)


def test_purge_deletes_only_expired_tokens(session: Session, clock: ManualClock) -> None:
    for minutes in (1, 2, 3):
        spend_token(
            session,
            scope="s",
            key=f"k{minutes}",
            expires_at=NOW + timedelta(minutes=minutes),
            clock=clock,
        )
    assert purge_spent_tokens(session, clock=fixed(NOW + timedelta(minutes=2))) == 1
    assert sorted(session.scalars(select(SpentToken.key))) == ["k2", "k3"]
    assert purge_spent_tokens(session, clock=fixed(NOW + timedelta(hours=1))) == 2
    assert purge_spent_tokens(session, clock=clock) == 0


@pytest.mark.parametrize(
    ("scope", "key"), [("", "k"), ("s" * 17, "k"), ("s", ""), ("s", "k" * 129)]
)
def test_scope_and_key_lengths_are_checked(
    session: Session, clock: ManualClock, scope: str, key: str
) -> None:
    with pytest.raises(InvalidInput):
        spend(session, clock, key, scope)


def test_the_longest_scope_and_key_fit(session: Session, clock: ManualClock) -> None:
    assert spend(session, clock, "k" * 128, "s" * 16)
    assert not spend(session, clock, "k" * 128, "s" * 16)


def concurrent_spends(engine: Engine, clock: ManualClock, count: int) -> list[bool]:
    """`count` transactions spend the same token at once, each holding its transaction open a
    moment after the spend so that the others run into its uncommitted row."""

    def one() -> bool:
        with session_scope(engine) as session:
            spent = spend(session, clock)
            time.sleep(0.2)
        return spent

    return run_concurrently(*[one] * count)


def test_concurrent_spends_of_one_token_succeed_once(engine: Engine, clock: ManualClock) -> None:
    try:
        assert sorted(concurrent_spends(engine, clock, 4)) == [False, False, False, True]
    finally:
        empty_all_tables(engine)


def test_concurrent_spends_of_an_expired_token_succeed_once(
    engine: Engine, clock: ManualClock
) -> None:
    try:
        with session_scope(engine) as session:
            spend_token(session, scope="link", key="mac-1", expires_at=NOW, clock=clock)
        clock.advance(timedelta(minutes=1))
        assert sorted(concurrent_spends(engine, clock, 4)) == [False, False, False, True]
    finally:
        empty_all_tables(engine)
