"""The outbox as the dispatcher uses it: claim tokens, deferral, backoff, stale claims, and the
win-back outcomes (returned within 30 days or lapsed) for the treated and the control arm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from crm_helpers import NOW, a_customer, an_air_fryer, run_concurrently
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.campaigns import create_campaign
from crm_store.clock import ManualClock
from crm_store.db import session_scope
from crm_store.errors import Conflict
from crm_store.orders import NewItem, create_order
from crm_store.outbox import (
    MAX_ATTEMPTS,
    STALE_CLAIM_REASON,
    CareMessage,
    claim_due_messages,
    defer_message,
    enqueue_care_message,
    get_care_message,
    mark_failed,
    mark_sent,
    mark_skipped,
    reclaim_stale_claims,
    renew_claim,
)
from crm_store.win_back_outcomes import (
    CONTROL_GROUP_REASON,
    ArmCounts,
    record_win_back_outcomes,
    win_back_counts,
)


def _queued(session: Session, clock: ManualClock, period: str = "2026-11") -> CareMessage:
    if session.info.get("campaign") is None:
        create_campaign(session, key="tips", name="养护贴士", kind="care_tip", category="care")
        session.info["campaign"] = True
    customer = a_customer(session, clock=clock)
    message, _ = enqueue_care_message(
        session,
        customer_id=customer.id,
        campaign_key="tips",
        period=period,
        channel="wechat",
        clock=clock,
    )
    return message


def test_a_claim_carries_its_token_and_only_that_token_finishes_the_row(
    session: Session, clock: ManualClock
) -> None:
    message = _queued(session, clock)
    [claimed] = claim_due_messages(session, clock=clock)
    assert claimed.claim_token and len(claimed.claim_token) == 32
    with pytest.raises(Conflict):
        mark_sent(session, message_id=message.id, claim_token="0" * 32, clock=clock)
    sent = mark_sent(session, message_id=message.id, claim_token=claimed.claim_token, clock=clock)
    assert (sent.state, sent.sent_at) == ("sent", clock())


def test_a_token_cannot_finish_a_row_that_is_not_being_sent(
    session: Session, clock: ManualClock
) -> None:
    message = _queued(session, clock)
    [claimed] = claim_due_messages(session, clock=clock)
    mark_failed(session, message_id=message.id, reason="boom", claim_token=claimed.claim_token)
    with pytest.raises(Conflict):
        mark_skipped(session, message_id=message.id, reason="x", claim_token=claimed.claim_token)


def test_a_failure_moves_the_row_to_its_retry_time(session: Session, clock: ManualClock) -> None:
    message = _queued(session, clock)
    [claimed] = claim_due_messages(session, clock=clock)
    retry_at = clock() + timedelta(minutes=2)
    failed = mark_failed(
        session,
        message_id=message.id,
        reason="Rasa answered 500: DeliveryFailed",
        claim_token=claimed.claim_token,
        retry_at=retry_at,
        clock=clock,
    )
    assert (failed.state, failed.scheduled_at, failed.attempts) == ("failed", retry_at, 1)
    assert claim_due_messages(session, clock=clock) == []
    clock.advance(timedelta(minutes=2))
    assert [m.id for m in claim_due_messages(session, clock=clock)] == [message.id]


def test_deferral_waits_without_using_up_attempts(session: Session, clock: ManualClock) -> None:
    """An unreachable customer is looked at again and again, never given up on."""
    message = _queued(session, clock)
    for _ in range(MAX_ATTEMPTS + 2):
        [claimed] = claim_due_messages(session, clock=clock)
        until = clock() + timedelta(minutes=30)
        deferred = defer_message(
            session,
            message_id=message.id,
            until=until,
            reason="unreachable",
            claim_token=claimed.claim_token,
            clock=clock,
        )
        assert (deferred.state, deferred.attempts, deferred.reason) == (
            "pending",
            0,
            "unreachable",
        )
        assert claim_due_messages(session, clock=clock) == []
        clock.advance(timedelta(minutes=30))
    assert get_care_message(session, message_id=message.id).scheduled_at == clock()


def test_stale_claims_are_reclaimed_and_the_dead_claim_cannot_finish(
    session: Session, clock: ManualClock
) -> None:
    stale, fresh = _queued(session, clock, "a"), _queued(session, clock, "b")
    [old_claim] = claim_due_messages(session, clock=clock, limit=1)
    assert old_claim.id == stale.id
    clock.advance(timedelta(minutes=9))
    claim_due_messages(session, clock=clock)  # `fresh` is claimed 9 minutes later
    clock.advance(timedelta(minutes=1))
    assert reclaim_stale_claims(session, older_than=timedelta(minutes=10), clock=clock) == 1
    row = get_care_message(session, message_id=stale.id)
    assert (row.state, row.reason, row.claim_token) == ("failed", STALE_CLAIM_REASON, None)
    assert get_care_message(session, message_id=fresh.id).state == "sending"
    with pytest.raises(Conflict):  # the claimer that stalled wakes up too late
        mark_sent(session, message_id=stale.id, claim_token=old_claim.claim_token, clock=clock)
    [retry] = claim_due_messages(session, clock=clock)
    assert (retry.id, retry.attempts) == (stale.id, 2)


def test_nothing_is_reclaimed_before_the_timeout(session: Session, clock: ManualClock) -> None:
    _queued(session, clock)
    claim_due_messages(session, clock=clock)
    clock.advance(timedelta(minutes=9, seconds=59))
    assert reclaim_stale_claims(session, older_than=timedelta(minutes=10), clock=clock) == 0


STALE = timedelta(minutes=10)


def test_renewing_a_claim_restarts_the_lease_of_its_whole_batch(
    session: Session, clock: ManualClock
) -> None:
    """A batch that makes progress is never reclaimed, however long it takes in all."""
    first, second = _queued(session, clock, "a"), _queued(session, clock, "b")
    token = claim_due_messages(session, clock=clock)[0].claim_token
    for _ in range(3):  # 27 minutes after the claim, renewed every 9
        clock.advance(timedelta(minutes=9))
        assert renew_claim(session, message_id=first.id, claim_token=token, clock=clock)
        assert reclaim_stale_claims(session, older_than=STALE, clock=clock) == 0
    mark_sent(session, message_id=first.id, claim_token=token, clock=clock)
    clock.advance(timedelta(minutes=9))
    assert renew_claim(session, message_id=second.id, claim_token=token, clock=clock)
    assert get_care_message(session, message_id=second.id).state == "sending"
    assert not renew_claim(session, message_id=first.id, claim_token=token, clock=clock)  # sent


def test_a_lost_claim_is_not_renewed_so_its_row_is_not_sent(
    session: Session, clock: ManualClock
) -> None:
    message = _queued(session, clock)
    [stalled] = claim_due_messages(session, clock=clock)
    clock.advance(STALE)
    assert reclaim_stale_claims(session, older_than=STALE, clock=clock) == 1
    assert not renew_claim(
        session, message_id=message.id, claim_token=stalled.claim_token, clock=clock
    )
    [taken_over] = claim_due_messages(session, clock=clock)  # another dispatcher has it now
    assert not renew_claim(
        session, message_id=message.id, claim_token=stalled.claim_token, clock=clock
    )
    assert not renew_claim(session, message_id=message.id, claim_token=None, clock=clock)
    assert not renew_claim(session, message_id=message.id, claim_token="0" * 32, clock=clock)
    assert renew_claim(
        session, message_id=message.id, claim_token=taken_over.claim_token, clock=clock
    )
    row = get_care_message(session, message_id=message.id)
    assert (row.state, row.claim_token, row.attempts) == ("sending", taken_over.claim_token, 2)


def test_a_renewal_racing_a_reclaim_loses_or_wins_the_whole_row(committing: Engine) -> None:
    """One thread renews each row of a stale batch right before "sending" it, another reclaims
    stale rows at the same moment: every row is either renewed (still held, to be sent by its
    claimer) or reclaimed (retryable, not sent by the old claimer), never both."""
    clock = ManualClock(NOW)
    with session_scope(committing) as session:
        ids = [_queued(session, clock, f"p{n}").id for n in range(12)]
    for _ in range(4):
        with session_scope(committing) as session:
            claimed = claim_due_messages(session, clock=clock)
        assert sorted(m.id for m in claimed) == sorted(ids)
        token = claimed[0].claim_token
        clock.advance(STALE + timedelta(seconds=1))

        def renew_each(token: str | None = token) -> list[bool]:
            held = []
            for message_id in ids:
                with session_scope(committing) as session:
                    held.append(
                        renew_claim(session, message_id=message_id, claim_token=token, clock=clock)
                    )
            return held

        def reclaim() -> int:
            with session_scope(committing) as session:
                return reclaim_stale_claims(session, older_than=STALE, clock=clock)

        held, reclaimed = run_concurrently(renew_each, reclaim)
        with session_scope(committing) as session:
            states = [get_care_message(session, message_id=i).state for i in ids]
        assert states == ["sending" if kept else "failed" for kept in held]
        assert reclaimed == held.count(False)
        with session_scope(committing) as session:  # back to pending for the next round
            for message_id in ids:
                defer_message(session, message_id=message_id, until=clock(), reason="again")


def _win_back_row(session: Session, clock: ManualClock, *, control: bool, name: str) -> int:
    customer = a_customer(session, name=name, clock=clock)
    message, _ = enqueue_care_message(
        session,
        customer_id=customer.id,
        campaign_key="win_back",
        period="2026-H2",
        channel="wechat",
        clock=clock,
    )
    if control:
        mark_skipped(session, message_id=message.id, reason=CONTROL_GROUP_REASON, clock=clock)
    else:
        [claimed] = claim_due_messages(session, clock=clock)
        mark_sent(session, message_id=message.id, claim_token=claimed.claim_token, clock=clock)
    return customer.id


def _order(session: Session, customer_id: int, clock: ManualClock, status: str = "paid") -> None:
    create_order(
        session,
        customer_id=customer_id,
        items=[NewItem("AF-01")],
        status=status,
        clock=clock,
    )


def test_win_back_outcomes_are_recorded_once_the_window_closed(
    session: Session, clock: ManualClock
) -> None:
    an_air_fryer(session)
    create_campaign(session, key="win_back", name="老客召回", kind="win_back", category="offer")
    start = clock()
    came_back = _win_back_row(session, clock, control=False, name="回来了")
    stayed_away = _win_back_row(session, clock, control=False, name="没回来")
    control_back = _win_back_row(session, clock, control=True, name="对照回来")
    control_away = _win_back_row(session, clock, control=True, name="对照没回来")
    clock.advance(timedelta(days=10))
    _order(session, came_back, clock)
    _order(session, control_back, clock)
    _order(session, stayed_away, clock, status="cancelled")  # a void order is no comeback
    clock.advance(timedelta(days=19))
    assert record_win_back_outcomes(session, clock=clock) == 0  # windows still open
    clock.now = start + timedelta(days=30)
    _order(session, control_away, clock)  # one day late: the window is [created, +30 d)
    assert record_win_back_outcomes(session, clock=clock) == 4
    assert record_win_back_outcomes(session, clock=clock) == 0
    counts = win_back_counts(session)
    assert counts.treated == ArmCounts(measured=2, returned=1)
    assert counts.control == ArmCounts(measured=2, returned=1)


def test_rows_outside_the_experiment_get_no_outcome(session: Session, clock: ManualClock) -> None:
    """A row skipped for another reason (an open complaint) measures nothing."""
    create_campaign(session, key="win_back", name="老客召回", kind="win_back", category="offer")
    customer = a_customer(session, clock=clock)
    message, _ = enqueue_care_message(
        session,
        customer_id=customer.id,
        campaign_key="win_back",
        period="2026-H2",
        channel="web",
        clock=clock,
    )
    mark_skipped(session, message_id=message.id, reason="open_complaint", clock=clock)
    clock.advance(timedelta(days=31))
    assert record_win_back_outcomes(session, clock=clock) == 0
    assert win_back_counts(session).treated == ArmCounts(0, 0)


def test_no_win_back_campaign_means_nothing_to_measure(session: Session) -> None:
    assert record_win_back_outcomes(session) == 0
    assert win_back_counts(session).control == ArmCounts(0, 0)
