"""Surveys against the demo CRM: when one is due, how answers are read, what is stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from actions.survey import (
    NOT_ASKED,
    ActionCheckSurveyAtGoodbye,
    ActionRecordFeedback,
    ActionSubmitSurvey,
    ValidateSurveyForm,
)
from crm_store.customers import set_consent
from crm_store.db import session_scope
from crm_store.feedback import list_feedback
from crm_store.models import AuditEntry
from crm_store.segments import list_tags
from crm_store.surveys import find_survey_response, list_survey_responses
from crm_store.tickets import list_tickets, open_ticket
from tests.actions.helpers import NOW, WANG, ZHANG, Run, identified, responses, slots_set, tracker

SERVICE_TURN = {
    "event": "user",
    "text": "我的订单",
    "parse_data": {"intent": {"name": "order_status"}},
}


def goodbye(sender: str, customer: int | None = ZHANG) -> Any:
    slots = identified(customer) if customer else {}
    return tracker(sender=sender, slots=slots, intent="goodbye", events=[SERVICE_TURN])


def test_a_survey_is_due_after_a_service_conversation(run: Run) -> None:
    _, events = run(ActionCheckSurveyAtGoodbye(), goodbye("web-s1"))
    slots = slots_set(events)
    assert slots["survey_due"] is True and slots["survey_trigger"] == "end_of_chat"
    assert slots["survey_nps"] is None  # NPS is asked too: none in the last 90 days


def test_no_survey_after_small_talk_only(run: Run) -> None:
    state = tracker(sender="web-s2", slots=identified(ZHANG), intent="goodbye")
    assert slots_set(run(ActionCheckSurveyAtGoodbye(), state)[1]) == {"survey_due": False}


def test_no_survey_for_a_customer_who_opted_out_or_has_an_open_complaint(
    run: Run, crm: Engine
) -> None:
    with session_scope(crm) as session:
        set_consent(session, customer_id=ZHANG, category="survey", granted=False, source="test")
    assert slots_set(run(ActionCheckSurveyAtGoodbye(), goodbye("web-s3"))[1])["survey_due"] is False
    with session_scope(crm) as session:
        set_consent(session, customer_id=ZHANG, category="survey", granted=True, source="test")
        open_ticket(session, customer_id=ZHANG, kind="complaint", subject="s", description="d")
    assert slots_set(run(ActionCheckSurveyAtGoodbye(), goodbye("web-s4"))[1])["survey_due"] is False


def _answer(run: Run, slot: str, value: str, retries: float = 0) -> tuple[list, dict[str, Any]]:
    state = tracker(
        sender="web-s5",
        slots={**identified(ZHANG), "requested_slot": slot, "survey_retries": retries},
        extracted={slot: value},
        active_loop="survey_form",
    )
    messages, events = run(ValidateSurveyForm(), state)
    return responses(messages), slots_set(events)


def test_free_text_scores_are_read(run: Run) -> None:
    assert _answer(run, "survey_csat", "还行吧 4星")[1]["survey_csat"] == "4"
    assert _answer(run, "survey_nps", "打8分吧")[1]["survey_nps"] == "8"


def test_an_unclear_answer_is_asked_again_twice_then_the_survey_ends(run: Run) -> None:
    said, slots = _answer(run, "survey_csat", "六颗星", retries=0)
    assert said == ["utter_survey_csat_hint"] and slots["survey_csat"] is None
    said, slots = _answer(run, "survey_nps", "abc", retries=1)
    assert said == ["utter_survey_nps_hint"] and slots["survey_retries"] == 2
    said, slots = _answer(run, "survey_nps", "abc", retries=2)
    assert said == [] and slots["survey_outcome"] == "incomplete"
    assert slots["survey_comment"] == NOT_ASKED


def test_skipping_declines(run: Run) -> None:
    assert _answer(run, "survey_csat", "不想答")[1]["survey_outcome"] == "declined"


def _submit(run: Run, sender: str, customer: int, **answers: Any) -> list[str]:
    slots = {**identified(customer), "survey_trigger": "end_of_chat", **answers}
    messages, events = run(ActionSubmitSurvey(), tracker(sender=sender, slots=slots))
    assert slots_set(events)["survey_csat"] is None
    return responses(messages)


def test_a_happy_answer_is_stored_once_with_the_comment_themes(run: Run, crm: Engine) -> None:
    answers = {"survey_csat": "5", "survey_nps": "9", "survey_comment": "快递很快，包装也好"}
    assert _submit(run, "web-s6", WANG, **answers) == ["utter_survey_thanks"]
    assert _submit(run, "web-s6", WANG, **answers) == ["utter_survey_thanks"]

    with session_scope(crm) as session:
        rows = [
            r
            for r in list_survey_responses(session, customer_id=WANG)
            if r.conversation_id == "web-s6"
        ]
    assert len(rows) == 1 and (rows[0].csat, rows[0].nps) == (5, 9)
    assert rows[0].status == "answered" and "物流" in rows[0].themes
    assert rows[0].polarity == "positive"  # the comment's analysed polarity, for the dashboard


def test_a_detractor_gets_a_follow_up_ticket_a_call_back_and_an_alert(
    run: Run, crm: Engine
) -> None:
    answers = {"survey_csat": "1", "survey_nps": NOT_ASKED, "survey_comment": "用了一周就坏了"}
    assert _submit(run, "web-s7", ZHANG, **answers) == ["utter_survey_detractor"]

    with session_scope(crm) as session:
        tickets = list_tickets(session, customer_id=ZHANG)
        assert any(t.priority == "high" and "survey" in t.subject for t in tickets)
        assert "callback" in list_tags(session, customer_id=ZHANG)
        alerts = session.scalars(select(AuditEntry).where(AuditEntry.action == "detractor_alert"))
        assert len(list(alerts)) == 1


def test_a_declined_survey_is_stored_as_declined(run: Run, crm: Engine) -> None:
    declined = {"survey_outcome": "declined", "survey_csat": NOT_ASKED}
    assert _submit(run, "web-s8", ZHANG, **declined) == ["utter_survey_declined"]
    with session_scope(crm) as session:
        row = find_survey_response(session, conversation_id="web-s8", trigger="end_of_chat")
    assert row is not None and row.status == "declined"


def test_a_survey_is_not_asked_twice_in_one_conversation(run: Run) -> None:
    answers = {"survey_csat": "4", "survey_nps": "8", "survey_comment": NOT_ASKED}
    _submit(run, "web-s9", WANG, **answers)
    later = tracker(
        sender="web-s9", slots=identified(WANG), intent="goodbye", events=[SERVICE_TURN]
    )
    assert slots_set(run(ActionCheckSurveyAtGoodbye(), later)[1])["survey_due"] is False


def test_the_fatigue_window_counts_surveys_on_any_channel(run: Run) -> None:
    answers = {"survey_csat": "4", "survey_nps": "8", "survey_comment": NOT_ASKED}
    _submit(run, "web-earlier", ZHANG, **answers)
    assert (
        slots_set(run(ActionCheckSurveyAtGoodbye(), goodbye("web-s10"))[1])["survey_due"] is False
    )
    in_eight_days = run(ActionCheckSurveyAtGoodbye(), goodbye("web-s11"), NOW + timedelta(days=8))
    assert slots_set(in_eight_days[1])["survey_nps"] == NOT_ASKED  # NPS waits 90 days


def test_feedback_outside_a_survey_is_kept_with_its_themes(run: Run, crm: Engine) -> None:
    state = tracker(
        sender="web-f", slots=identified(WANG), text="客服态度很好，点赞", intent="give_feedback"
    )
    assert responses(run(ActionRecordFeedback(), state)[0]) == ["utter_thank_feedback"]
    with session_scope(crm) as session:
        [kept] = list_feedback(session)
    assert kept.customer_id == WANG and kept.polarity == "positive" and "客服态度" in kept.themes


def test_starting_the_survey_validates_nothing_the_customer_did_not_say(run: Run) -> None:
    """The check action clears survey_nps just before the form starts: that is no answer."""
    state = tracker(
        sender="web-s12",
        slots={"survey_trigger": "end_of_chat"},
        extracted={"survey_due": True, "survey_nps": None, "survey_retries": 0.0},
        active_loop="survey_form",
    )
    messages, events = run(ValidateSurveyForm(), state)
    assert messages == [] and "survey_nps" not in slots_set(events)
