"""The staff console's queue rules: priority order, claim races, transfer, take-over, close,
the wait timeout, notes and snippets, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest
from crm_helpers import NOW, a_customer, empty_all_tables, run_concurrently
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm_store.agent_notes import (
    add_note,
    create_snippet,
    delete_snippet,
    list_notes,
    list_snippets,
)
from crm_store.audit import list_audit_entries
from crm_store.clock import ManualClock
from crm_store.db import session_scope
from crm_store.errors import Conflict, InvalidInput, NotFound
from crm_store.handoff_queue import (
    claim_handoff,
    close_by_agent,
    close_by_customer,
    count_ahead,
    estimate_wait_minutes,
    expected_wait_minutes,
    list_due_timeouts,
    list_live,
    list_queue,
    mark_timeout_notified,
    priority_for,
    start_agent_handoff,
    take_over_handoff,
    transfer_handoff,
)
from crm_store.handoffs import Handoff, Route, get_handoff, request_handoff
from crm_store.staff import create_staff_user, deactivate_staff_user
from crm_store.tickets import open_ticket


def _request(
    session: Session, clock: ManualClock, conversation_id: str, priority: int = 0
) -> Handoff:
    return request_handoff(
        session,
        conversation_id=conversation_id,
        channel="web",
        reason="customer_request",
        route=Route(priority, conversation_id, "webchat"),
        clock=clock,
    )


def _staff(session: Session, username: str, role: str = "agent") -> int:
    return create_staff_user(
        session, username=username, display_name=username, role=role, password="carebot-demo"
    ).id


def test_priority_ranks_tier_before_reason() -> None:
    assert priority_for("钻石", "customer_request") > priority_for("金卡", "complaint")
    assert priority_for("普通", "complaint") > priority_for("普通", "fallback")
    assert priority_for("普通", "fallback") > priority_for(None, "customer_request") == 0
    assert priority_for("unknown tier", "unknown reason") == 0


def test_wait_estimate_grows_with_the_queue_and_is_never_zero() -> None:
    assert estimate_wait_minutes(0, []) == 2
    assert estimate_wait_minutes(3, []) == 8
    assert estimate_wait_minutes(0, [timedelta(seconds=5)] * 3) == 1
    assert estimate_wait_minutes(1, [timedelta(minutes=4), timedelta(minutes=10)]) == 9


def test_the_queue_is_ordered_by_priority_then_wait(session: Session, clock: ManualClock) -> None:
    old = _request(session, clock, "old")
    clock.advance(timedelta(minutes=1))
    urgent = _request(session, clock, "urgent", priority=30)
    clock.advance(timedelta(minutes=1))
    new = _request(session, clock, "new")
    queue = list_queue(session, clock=clock)
    assert [entry.handoff.id for entry in queue] == [urgent.id, old.id, new.id]
    assert queue[1].waited == timedelta(minutes=2)
    assert count_ahead(session, handoff=new) == 2
    assert count_ahead(session, handoff=urgent) == 0
    assert expected_wait_minutes(session, handoff=new) == (2, 6)


def test_the_queue_shows_the_customer(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session, clock=clock)
    request_handoff(
        session,
        conversation_id="known",
        channel="wechat",
        reason="complaint",
        customer_id=customer.id,
        clock=clock,
    )
    (entry,) = list_queue(session, clock=clock)
    assert (entry.customer_name, entry.tier) == ("王小明", "普通")


def test_claim_is_audited_and_a_second_claim_conflicts(
    session: Session, clock: ManualClock
) -> None:
    handoff = _request(session, clock, "c1")
    first, second = _staff(session, "agent"), _staff(session, "agent2")
    claimed = claim_handoff(session, handoff_id=handoff.id, agent_id=first, clock=clock)
    assert (claimed.state, claimed.agent_id) == ("active", first)
    with pytest.raises(Conflict):
        claim_handoff(session, handoff_id=handoff.id, agent_id=second, clock=clock)
    with pytest.raises(NotFound):
        claim_handoff(session, handoff_id=999_999, agent_id=second, clock=clock)
    (entry,) = list_audit_entries(session, entity="handoff", entity_id=handoff.id)
    assert (entry.actor, entry.action) == (f"staff:{first}", "claim_handoff")
    assert [e.handoff.id for e in list_live(session, agent_id=first, clock=clock)] == [handoff.id]
    assert list_live(session, agent_id=second, clock=clock) == []
    assert list_queue(session, clock=clock) == []


def test_concurrent_claims_one_agent_wins(engine: Engine) -> None:
    """Two agents click "claim" on the same conversation at the same moment, five times over."""
    try:
        with session_scope(engine) as session:
            agents = [_staff(session, "agent"), _staff(session, "agent2")]
            handoffs = [_request(session, ManualClock(NOW), f"race-{n}").id for n in range(5)]

        def claim(handoff_id: int, agent_id: int) -> int | None:
            try:
                with session_scope(engine) as session:
                    return claim_handoff(session, handoff_id=handoff_id, agent_id=agent_id).agent_id
            except Conflict:
                return None

        for handoff_id in handoffs:
            results = run_concurrently(*[partial(claim, handoff_id, a) for a in agents])
            winners = [result for result in results if result is not None]
            assert len(winners) == 1
            with session_scope(engine) as session:
                assert get_handoff(session, handoff_id=handoff_id).agent_id == winners[0]
    finally:
        empty_all_tables(engine)


def test_transfer_moves_an_active_conversation(session: Session, clock: ManualClock) -> None:
    handoff = _request(session, clock, "t1")
    agent, other, third = _staff(session, "agent"), _staff(session, "agent2"), _staff(session, "a3")
    claim_handoff(session, handoff_id=handoff.id, agent_id=agent, clock=clock)
    moved = transfer_handoff(
        session, handoff_id=handoff.id, from_agent_id=agent, to_agent_id=other, actor_id=agent
    )
    assert moved.agent_id == other
    with pytest.raises(Conflict):  # no longer the first agent's to give away
        transfer_handoff(
            session, handoff_id=handoff.id, from_agent_id=agent, to_agent_id=third, actor_id=agent
        )
    deactivate_staff_user(session, staff_id=third, actor="test")
    with pytest.raises(InvalidInput):
        transfer_handoff(
            session, handoff_id=handoff.id, from_agent_id=other, to_agent_id=third, actor_id=other
        )
    with pytest.raises(NotFound):
        transfer_handoff(
            session, handoff_id=handoff.id, from_agent_id=other, to_agent_id=424242, actor_id=other
        )
    actions = [e.action for e in list_audit_entries(session, entity="handoff")]
    assert actions.count("transfer_handoff") == 1


def test_a_supervisor_takes_over_waiting_or_active(session: Session, clock: ManualClock) -> None:
    agent, boss = _staff(session, "agent"), _staff(session, "boss", "supervisor")
    waiting, active = _request(session, clock, "w"), _request(session, clock, "a")
    claim_handoff(session, handoff_id=active.id, agent_id=agent, clock=clock)
    for handoff in (waiting, active):
        taken = take_over_handoff(session, handoff_id=handoff.id, supervisor_id=boss, clock=clock)
        assert (taken.state, taken.agent_id) == ("active", boss)
        assert taken.accepted_at is not None
    close_by_agent(session, handoff_id=waiting.id, outcome="resolved", agent_id=boss)
    with pytest.raises(Conflict):
        take_over_handoff(session, handoff_id=waiting.id, supervisor_id=boss, clock=clock)


def test_close_by_the_agent_with_an_outcome(session: Session, clock: ManualClock) -> None:
    agent, other = _staff(session, "agent"), _staff(session, "agent2")
    handoff = _request(session, clock, "close")
    claim_handoff(session, handoff_id=handoff.id, agent_id=agent, clock=clock)
    with pytest.raises(InvalidInput):
        close_by_agent(session, handoff_id=handoff.id, outcome="whatever", agent_id=agent)
    with pytest.raises(Conflict):  # not theirs
        close_by_agent(session, handoff_id=handoff.id, outcome="resolved", agent_id=other)
    closed = close_by_agent(
        session, handoff_id=handoff.id, outcome="call_back", agent_id=agent, clock=clock
    )
    assert (closed.state, closed.outcome, closed.closed_at) == ("closed", "call_back", clock())
    with pytest.raises(Conflict):  # closing twice
        close_by_agent(session, handoff_id=handoff.id, outcome="resolved", agent_id=agent)
    again = _request(session, clock, "close")  # a new handoff of the same conversation
    assert again.id != handoff.id


def test_a_supervisor_closes_anyones(session: Session, clock: ManualClock) -> None:
    agent, boss = _staff(session, "agent"), _staff(session, "boss", "supervisor")
    handoff = _request(session, clock, "sup")
    claim_handoff(session, handoff_id=handoff.id, agent_id=agent, clock=clock)
    closed = close_by_agent(
        session, handoff_id=handoff.id, outcome="resolved", agent_id=boss, any_agent=True
    )
    assert closed.state == "closed"


def test_the_customer_stops_waiting_unless_an_agent_was_faster(
    session: Session, clock: ManualClock
) -> None:
    agent = _staff(session, "agent")
    waiting, claimed = _request(session, clock, "w"), _request(session, clock, "c")
    claim_handoff(session, handoff_id=claimed.id, agent_id=agent, clock=clock)
    left = close_by_customer(session, handoff_id=waiting.id, outcome="message_left", clock=clock)
    assert left is not None and (left.state, left.outcome) == ("closed", "message_left")
    assert close_by_customer(session, handoff_id=claimed.id, outcome="returned_to_bot") is None
    with pytest.raises(InvalidInput):
        close_by_customer(session, handoff_id=claimed.id, outcome="resolved")


def test_timeouts_are_told_once_and_never_after_a_claim(
    session: Session, clock: ManualClock
) -> None:
    agent = _staff(session, "agent")
    first = _request(session, clock, "first")
    unreachable = request_handoff(
        session, conversation_id="nowhere", channel="web", reason="customer_request", clock=clock
    )
    clock.advance(timedelta(minutes=3))
    second = _request(session, clock, "second")
    wait = timedelta(minutes=5)
    assert list_due_timeouts(session, wait=wait, clock=clock) == []
    clock.advance(timedelta(minutes=2))
    assert [h.id for h in list_due_timeouts(session, wait=wait, clock=clock)] == [first.id]
    assert mark_timeout_notified(session, handoff_id=first.id, clock=clock)
    assert not mark_timeout_notified(session, handoff_id=first.id, clock=clock)
    clock.advance(timedelta(minutes=3))
    claim_handoff(session, handoff_id=second.id, agent_id=agent, clock=clock)
    assert list_due_timeouts(session, wait=wait, clock=clock) == []
    assert not mark_timeout_notified(session, handoff_id=second.id, clock=clock)
    assert unreachable.sender_id is None


def test_an_agent_starts_a_handoff_from_the_live_list(session: Session, clock: ManualClock) -> None:
    agent, other = _staff(session, "agent"), _staff(session, "agent2")
    route = Route(0, "live-1", "webchat")
    handoff = start_agent_handoff(
        session, conversation_id="live-1", channel="web", route=route, agent_id=agent, clock=clock
    )
    assert (handoff.state, handoff.agent_id, handoff.reason) == ("active", agent, "agent_initiated")
    assert (handoff.sender_id, handoff.output_channel) == ("live-1", "webchat")
    same = start_agent_handoff(
        session, conversation_id="live-1", channel="web", route=route, agent_id=agent, clock=clock
    )
    assert same.id == handoff.id
    with pytest.raises(Conflict):
        start_agent_handoff(
            session, conversation_id="live-1", channel="web", route=route, agent_id=other
        )


def test_notes_stay_with_the_handoff(session: Session, clock: ManualClock) -> None:
    agent = _staff(session, "agent")
    handoff = _request(session, clock, "n")
    note = add_note(session, handoff_id=handoff.id, author_id=agent, text="客户很着急", clock=clock)
    assert [n.text for n in list_notes(session, handoff_id=handoff.id)] == ["客户很着急"]
    assert note.author_id == agent
    with pytest.raises(InvalidInput):
        add_note(session, handoff_id=handoff.id, author_id=agent, text="  ")
    with pytest.raises(NotFound):
        add_note(session, handoff_id=424242, author_id=agent, text="x")
    assert "add_note" in [e.action for e in list_audit_entries(session, entity="handoff")]


def test_snippets_are_unique_by_title(session: Session, clock: ManualClock) -> None:
    boss = _staff(session, "boss", "supervisor")
    snippet = create_snippet(
        session, title="问候", text="您好，请问有什么可以帮您？", author_id=boss
    )
    create_snippet(session, title="道别", text="感谢您的耐心，祝您生活愉快！", author_id=boss)
    with pytest.raises(Conflict):
        create_snippet(session, title="问候", text="again", author_id=boss)
    assert [s.title for s in list_snippets(session)] == sorted(["问候", "道别"])
    delete_snippet(session, snippet_id=snippet.id, actor_id=boss)
    assert [s.title for s in list_snippets(session)] == ["道别"]
    with pytest.raises(NotFound):
        delete_snippet(session, snippet_id=snippet.id, actor_id=boss)


def test_a_message_ticket_can_be_opened(session: Session, clock: ManualClock) -> None:
    customer = a_customer(session, clock=clock)
    ticket = open_ticket(
        session,
        customer_id=customer.id,
        kind="message",
        subject="留言",
        description="请回电",
        clock=clock,
    )
    assert ticket.kind == "message" and ticket.sla_due_at == clock() + timedelta(hours=48)
