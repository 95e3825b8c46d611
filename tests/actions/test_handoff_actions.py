"""Handoff actions against the seeded CRM: queue and pause, after hours, timeouts, the way back."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from actions.handoff import (
    ActionCancelHandoff,
    ActionHandoffClosed,
    ActionHandoffDetractor,
    ActionHandoffTimeout,
    ActionHandoffTopTier,
    ActionLeaveMessage,
    ActionRequestHuman,
)
from actions.rules.handoff import handoff_reason, parse_staffed_hours
from crm_store.db import session_scope
from crm_store.handoff_queue import claim_handoff, close_by_agent
from crm_store.handoffs import find_open_handoff, get_handoff
from crm_store.models import Customer as CustomerRow
from crm_store.staff import create_staff_user
from crm_store.surveys import find_survey_response, record_survey_answer, record_survey_response
from crm_store.tickets import list_tickets
from tests.actions.helpers import (
    NOW,
    WANG,
    ZHANG,
    Run,
    identified,
    responses,
    slots_set,
    tracker,
)

PAUSED = {"event": "pause", "timestamp": None}
NIGHT = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)  # 23:00 in Shanghai
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def office_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREBOT_HANDOFF_HOURS", "09:00-21:00")


def _agent(crm: Engine) -> int:
    with session_scope(crm) as session:
        return create_staff_user(
            session, username="agent-t", display_name="小李", role="agent", password="carebot-demo"
        ).id


def test_staffed_hours_and_the_next_opening() -> None:
    hours = parse_staffed_hours("09:00-21:00", "Asia/Shanghai")
    assert hours.is_open(NOW) and not hours.is_open(NIGHT)
    assert hours.next_opening(NOW) == NOW
    assert hours.next_opening(NIGHT) == datetime(2026, 11, 21, 9, 0, tzinfo=SHANGHAI)
    early = datetime(2026, 11, 20, 7, 0, tzinfo=SHANGHAI)
    assert hours.next_opening(early) == datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
    overnight = parse_staffed_hours("20:00-02:00")
    assert overnight.is_open(NIGHT) and not overnight.is_open(NOW)
    assert parse_staffed_hours("always").is_open(NIGHT)
    assert parse_staffed_hours("").label() == "00:00-00:00"
    assert parse_staffed_hours(None).always
    assert parse_staffed_hours("08:30-18:00").start == time(8, 30)
    with pytest.raises(ValueError):
        parse_staffed_hours("nine to five")


def test_the_reason_comes_from_the_latest_intents() -> None:
    assert handoff_reason(["greet", "complaint", "request_human"]) == "complaint"
    assert handoff_reason(["nlu_fallback", "nlu_fallback", "request_human"]) == "fallback"
    assert handoff_reason(["out_of_scope", "out_of_scope", "request_human"]) == "fallback"
    assert handoff_reason(["request_human"]) == "customer_request"


def test_a_request_queues_tells_the_wait_and_pauses(run: Run, crm: Engine) -> None:
    state = tracker(sender="web-q", slots=identified(WANG), intent="request_human")
    messages, events = run(ActionRequestHuman(), state)
    assert responses(messages) == ["utter_handoff_queued"]
    assert messages[0]["ahead"] == 0 and messages[0]["minutes"] >= 1
    assert [e["event"] for e in events] == ["pause"]
    with session_scope(crm) as session:
        handoff = find_open_handoff(session, conversation_id="web-q")
    assert handoff is not None
    assert (handoff.sender_id, handoff.output_channel) == ("web-q", "webchat")
    assert handoff.priority == 20  # 金卡, asked plainly


def test_a_second_customer_is_told_someone_is_ahead(run: Run) -> None:
    run(ActionRequestHuman(), tracker(sender="first", intent="request_human"))
    messages, _ = run(ActionRequestHuman(), tracker(sender="second", intent="request_human"))
    assert messages[0]["ahead"] == 1


def test_after_hours_a_known_customer_leaves_a_message(run: Run, crm: Engine) -> None:
    state = tracker(sender="web-n", slots=identified(WANG), intent="request_human", text="转人工")
    messages, events = run(ActionRequestHuman(), state, NIGHT)
    assert responses(messages) == ["utter_handoff_after_hours"] and events == []
    assert messages[0]["hours"] == "09:00-21:00"
    assert messages[0]["reply_at"] == "11月21日 10:00"
    with session_scope(crm) as session:
        assert find_open_handoff(session, conversation_id="web-n") is None
        (ticket,) = [t for t in list_tickets(session, customer_id=WANG) if t.kind == "message"]
    assert ticket.id == messages[0]["ticket_id"] and ticket.conversation_id == "web-n"


def test_after_hours_an_anonymous_customer_stays_queued(run: Run, crm: Engine) -> None:
    messages, events = run(ActionRequestHuman(), tracker(sender="anon-n"), NIGHT)
    assert responses(messages) == ["utter_handoff_after_hours_queued"] and events == []
    with session_scope(crm) as session:
        handoff = find_open_handoff(session, conversation_id="anon-n")
    assert handoff is not None and handoff.state == "waiting"


def test_staffed_around_the_clock_unless_configured(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAREBOT_HANDOFF_HOURS")
    messages, events = run(ActionRequestHuman(), tracker(sender="owl"), NIGHT)
    assert responses(messages) == ["utter_handoff_queued"] and events[0]["event"] == "pause"


def test_a_top_tier_complaint_goes_to_a_person(run: Run, crm: Engine) -> None:
    state = tracker(sender="vip", slots=identified(WANG), intent="complaint")
    assert run(ActionHandoffTopTier(), state) == ([], [])  # 金卡 is not the top tier
    with session_scope(crm) as session:
        session.execute(update(CustomerRow).where(CustomerRow.id == WANG).values(tier="钻石"))
    messages, events = run(ActionHandoffTopTier(), state)
    assert responses(messages) == ["utter_handoff_priority"] and messages[0]["tier"] == "钻石"
    assert [e["event"] for e in events] == ["pause"]
    with session_scope(crm) as session:
        handoff = find_open_handoff(session, conversation_id="vip")
    assert handoff is not None and (handoff.reason, handoff.priority) == ("complaint", 33)
    assert run(ActionHandoffTopTier(), state, NIGHT) == ([], [])


def test_a_detractor_is_queued_without_pausing(run: Run, crm: Engine) -> None:
    for sender, csat, store in (
        ("happy", 5, record_survey_response),
        ("unhappy", 1, record_survey_response),
        ("left", 2, record_survey_answer),  # a CSAT, then "跳过": partial, still unhappy
    ):
        with session_scope(crm) as session:
            store(
                session,
                conversation_id=sender,
                trigger="end_of_chat",
                channel="web",
                customer_id=WANG,
                csat=csat,
            )
        state = tracker(sender=sender, slots=identified(WANG))
        assert run(ActionHandoffDetractor(), state) == ([], [])
    with session_scope(crm) as session:
        assert find_open_handoff(session, conversation_id="happy") is None
        handoff = find_open_handoff(session, conversation_id="unhappy")
        left = find_open_handoff(session, conversation_id="left")
    assert handoff is not None and handoff.reason == "detractor"
    assert left is not None and left.reason == "detractor"


def test_timeout_offers_the_choices_unless_an_agent_was_faster(run: Run, crm: Engine) -> None:
    agent = _agent(crm)
    run(ActionRequestHuman(), tracker(sender="slow", intent="request_human"))
    messages, events = run(ActionHandoffTimeout(), tracker(sender="slow"))
    assert responses(messages) == ["utter_handoff_no_pickup"] and events == []
    with session_scope(crm) as session:
        handoff = find_open_handoff(session, conversation_id="slow")
        assert handoff is not None
        claim_handoff(session, handoff_id=handoff.id, agent_id=agent)
    messages, events = run(ActionHandoffTimeout(), tracker(sender="slow"))
    assert messages == [] and [e["event"] for e in events] == ["pause"]
    assert run(ActionHandoffTimeout(), tracker(sender="nobody")) == ([], [])


def test_leaving_a_message_closes_the_wait(run: Run, crm: Engine) -> None:
    run(ActionRequestHuman(), tracker(sender="msg", slots=identified(WANG)))
    state = tracker(sender="msg", slots=identified(WANG), intent="leave_message", text="请回电")
    messages, events = run(ActionLeaveMessage(), state)
    assert responses(messages) == ["utter_handoff_message_left"] and events == []
    with session_scope(crm) as session:
        assert find_open_handoff(session, conversation_id="msg") is None
        ticket = next(t for t in list_tickets(session, customer_id=WANG) if t.kind == "message")
    assert ticket.description == "请回电" and ticket.id == messages[0]["ticket_id"]


def test_an_anonymous_message_keeps_the_customer_queued(run: Run, crm: Engine) -> None:
    messages, events = run(ActionLeaveMessage(), tracker(sender="anon-m", text="我留言"))
    assert responses(messages) == ["utter_handoff_message_kept"] and events == []
    with session_scope(crm) as session:
        handoff = find_open_handoff(session, conversation_id="anon-m")
    assert handoff is not None and handoff.state == "waiting"


def test_going_back_to_the_bot(run: Run, crm: Engine) -> None:
    run(ActionRequestHuman(), tracker(sender="back"))
    messages, events = run(ActionCancelHandoff(), tracker(sender="back"))
    assert responses(messages) == ["utter_handoff_cancelled"] and events == []
    with session_scope(crm) as session:
        assert find_open_handoff(session, conversation_id="back") is None


def test_an_agent_already_there_keeps_the_conversation(run: Run, crm: Engine) -> None:
    agent = _agent(crm)
    run(ActionRequestHuman(), tracker(sender="kept"))
    with session_scope(crm) as session:
        handoff = find_open_handoff(session, conversation_id="kept")
        assert handoff is not None
        claim_handoff(session, handoff_id=handoff.id, agent_id=agent)
    for action in (ActionCancelHandoff(), ActionLeaveMessage()):
        messages, events = run(action, tracker(sender="kept", slots=identified(WANG)))
        assert messages == [] and [e["event"] for e in events] == ["pause"]
    with session_scope(crm) as session:
        assert get_handoff(session, handoff_id=handoff.id).state == "active"


def test_after_the_close_the_survey_is_about_the_agent(run: Run, crm: Engine) -> None:
    agent = _agent(crm)
    run(ActionRequestHuman(), tracker(sender="done"))
    with session_scope(crm) as session:
        handoff = find_open_handoff(session, conversation_id="done")
        assert handoff is not None
        claim_handoff(session, handoff_id=handoff.id, agent_id=agent)
        close_by_agent(session, handoff_id=handoff.id, outcome="resolved", agent_id=agent)
    # an identified customer: anonymous senders are not surveyed (docs/security.md)
    done = tracker(sender="done", slots=identified(ZHANG))
    messages, events = run(ActionHandoffClosed(), done, NOW + timedelta(1))
    assert responses(messages) == ["utter_handoff_ended"]
    assert slots_set(events)["survey_due"] is True
    assert slots_set(events)["survey_trigger"] == "after_handoff"
    with session_scope(crm) as session:
        survey = find_survey_response(session, conversation_id="done", trigger="after_handoff")
    assert survey is not None and survey.agent_id == agent
    messages, events = run(ActionHandoffClosed(), done)
    assert slots_set(events) == {"survey_due": False}  # once per conversation
