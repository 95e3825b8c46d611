"""Surveys against the demo CRM: when one is due, how answers are read, what is stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from actions.survey import (
    NOT_ASKED,
    ActionCheckSurveyAtGoodbye,
    ActionCheckSurveyFollowUp,
    ActionRecordFeedback,
    ActionSubmitSurvey,
    ValidateSurveyForm,
)
from crm_store.clock import fixed
from crm_store.customers import set_consent
from crm_store.db import session_scope
from crm_store.deliveries import find_delivery
from crm_store.feedback import list_feedback
from crm_store.models import AuditEntry
from crm_store.outbox import enqueue_care_message
from crm_store.segments import list_tags
from crm_store.surveys import SurveyResponse, find_survey_response, list_survey_responses
from crm_store.tickets import list_tickets, open_ticket
from tests.actions.helpers import NOW, WANG, ZHANG, Run, identified, responses, slots_set, tracker
from tests.care_helpers import a_campaign

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


def _answer(
    run: Run,
    slot: str,
    value: str,
    retries: float = 0,
    sender: str = "web-s5",
    customer: int = ZHANG,
) -> tuple[list, dict[str, Any]]:
    state = tracker(
        sender=sender,
        slots={**identified(customer), "requested_slot": slot, "survey_retries": retries},
        extracted={slot: value},
        active_loop="survey_form",
    )
    messages, events = run(ValidateSurveyForm(), state)
    return responses(messages), slots_set(events)


def _comment(run: Run, text: str, intent: str, sender: str) -> list[dict[str, Any]]:
    state = tracker(
        sender=sender,
        slots={**identified(WANG), "requested_slot": "survey_comment"},
        text=text,
        intent=intent,
        extracted={"survey_comment": text},
        active_loop="survey_form",
    )
    return run(ValidateSurveyForm(), state)[1]


def test_a_comment_about_the_delivery_is_a_comment_whatever_its_intent(
    run: Run, crm: Engine
) -> None:
    events = _comment(run, "快递太慢了", "order_status", sender="web-c1")
    assert slots_set(events)["survey_comment"] == "快递太慢了"
    assert not [e for e in events if e["event"] == "action_execution_rejected"]
    assert _row(crm, "web-c1").comment == "快递太慢了"


def test_a_question_at_the_comment_step_steps_aside_and_is_not_stored(
    run: Run, crm: Engine
) -> None:
    events = _comment(run, "我的快递到哪了？", "order_status", sender="web-c2")
    assert slots_set(events) == {"survey_comment": None}  # asked again once the answer is given
    assert [e["name"] for e in events if e["event"] == "action_execution_rejected"] == [
        "survey_form"
    ]
    with session_scope(crm) as session:
        assert (
            find_survey_response(session, conversation_id="web-c2", trigger="end_of_chat") is None
        )


def _row(crm: Engine, sender: str) -> SurveyResponse:
    with session_scope(crm) as session:
        row = find_survey_response(session, conversation_id=sender, trigger="end_of_chat")
    assert row is not None, f"no survey row for {sender}"
    return row


def _alerts(crm: Engine) -> int:
    with session_scope(crm) as session:
        query = select(AuditEntry).where(AuditEntry.action == "detractor_alert")
        return len(list(session.scalars(query)))


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


def _submit(run: Run, sender: str, customer: int, **slots: Any) -> list[str]:
    state = {**identified(customer), "survey_trigger": "end_of_chat", **slots}
    messages, events = run(ActionSubmitSurvey(), tracker(sender=sender, slots=state))
    assert slots_set(events)["survey_csat"] is None
    return responses(messages)


def _survey(run: Run, sender: str, customer: int, *answers: tuple[str, str]) -> list[str]:
    """The form's turns: each (slot, what the customer said) validated, then the survey's end
    with the slots the validations set; what the bot said, in order."""
    said: list[str] = []
    slots: dict[str, Any] = {}
    for slot, text in answers:
        replies, changed = _answer(run, slot, text, sender=sender, customer=customer)
        said += replies
        slots.update(changed)
    return said + _submit(run, sender, customer, **slots)


def test_a_happy_answer_is_stored_once_with_the_comment_themes(run: Run, crm: Engine) -> None:
    answers = (
        ("survey_csat", "5"),
        ("survey_nps", "9"),
        ("survey_comment", "快递很快，包装也好"),
    )
    assert _survey(run, "web-s6", WANG, *answers) == ["utter_survey_thanks"]
    assert _survey(run, "web-s6", WANG, *answers) == ["utter_survey_thanks"]

    with session_scope(crm) as session:
        rows = [
            r
            for r in list_survey_responses(session, customer_id=WANG)
            if r.conversation_id == "web-s6"
        ]
    assert len(rows) == 1 and (rows[0].csat, rows[0].nps) == (5, 9)
    assert rows[0].status == "answered" and "物流" in rows[0].themes
    assert rows[0].polarity == "positive"  # the comment's analysed polarity, for the dashboard


def test_each_answer_is_in_the_crm_as_soon_as_it_is_given(run: Run, crm: Engine) -> None:
    """Issue 16: the CSAT is stored when it is read, not when the survey ends."""
    _answer(run, "survey_csat", "4分", sender="web-p1", customer=WANG)
    row = _row(crm, "web-p1")
    assert (row.status, row.csat, row.nps, row.customer_id) == ("partial", 4, None, WANG)
    _answer(run, "survey_nps", "打九分", sender="web-p1", customer=WANG)
    assert (_row(crm, "web-p1").csat, _row(crm, "web-p1").nps) == (4, 9)
    _answer(run, "survey_comment", "物流很快", sender="web-p1", customer=WANG)
    row = _row(crm, "web-p1")
    assert (row.status, row.comment, row.themes) == ("partial", "物流很快", ("物流",))
    assert _submit(run, "web-p1", WANG, survey_csat="4", survey_nps="9") == ["utter_survey_thanks"]
    assert _row(crm, "web-p1").status == "answered"


def test_an_unclear_or_repeated_answer_keeps_the_stored_one(run: Run, crm: Engine) -> None:
    _answer(run, "survey_csat", "5", sender="web-p2", customer=WANG)
    stored = _row(crm, "web-p2")
    _answer(run, "survey_csat", "5", sender="web-p2", customer=WANG)  # validated again
    _answer(run, "survey_csat", "4.5", sender="web-p2", customer=WANG)  # unclear: asked again
    assert _row(crm, "web-p2") == stored
    _answer(run, "survey_csat", "不对，是4分", sender="web-p2", customer=WANG)  # a correction
    assert _row(crm, "web-p2").csat == 4


def test_a_survey_left_after_a_low_csat_keeps_it_and_is_followed_up_once(
    run: Run, crm: Engine
) -> None:
    said, _ = _answer(run, "survey_csat", "1", sender="web-p3")
    assert said == []  # the survey goes on: NPS and the comment are still to come
    row = _row(crm, "web-p3")
    assert (row.status, row.csat) == ("partial", 1)
    with session_scope(crm) as session:
        tickets = [t for t in list_tickets(session, customer_id=ZHANG) if "survey" in t.subject]
        assert [t.subject for t in tickets] == [f"survey #{row.id}: unhappy customer"]
        assert "callback" in list_tags(session, customer_id=ZHANG)
    _answer(run, "survey_csat", "1", sender="web-p3")  # validated again: no second follow-up
    _answer(run, "survey_nps", "0", sender="web-p3")  # another unhappy answer: still one
    assert _alerts(crm) == 1


def test_a_detractor_gets_a_follow_up_ticket_a_call_back_and_an_alert(
    run: Run, crm: Engine
) -> None:
    answers = (("survey_csat", "1"), ("survey_comment", "用了一周就坏了"))
    assert _survey(run, "web-s7", ZHANG, *answers) == ["utter_survey_detractor"]
    assert _submit(run, "web-s7", ZHANG) == ["utter_survey_detractor"]  # a repeated end

    with session_scope(crm) as session:
        tickets = list_tickets(session, customer_id=ZHANG)
        assert any(t.priority == "high" and "survey" in t.subject for t in tickets)
        assert "callback" in list_tags(session, customer_id=ZHANG)
    assert _alerts(crm) == 1
    assert _row(crm, "web-s7").status == "answered"


def test_a_strongly_negative_comment_is_followed_up_once(run: Run, crm: Engine) -> None:
    answers = (
        ("survey_csat", "4"),
        ("survey_nps", "8"),
        ("survey_comment", "客服态度非常差，太失望了"),
    )
    assert _survey(run, "web-p4", WANG, *answers) == ["utter_survey_detractor"]
    assert _alerts(crm) == 1
    with session_scope(crm) as session:
        [ticket] = [t for t in list_tickets(session, customer_id=WANG) if "survey" in t.subject]
    assert ticket.description == "客服态度非常差，太失望了"


def test_the_end_stores_scores_the_form_holds_that_the_crm_has_not(run: Run, crm: Engine) -> None:
    """A survey begun before the upgrade (its CSAT validated by the older action, which did not
    store it) still ends with the scores, and an unhappy one is followed up."""
    slots = {"survey_csat": "2", "survey_nps": "7", "survey_comment": NOT_ASKED}
    assert _submit(run, "web-p8", ZHANG, **slots) == ["utter_survey_detractor"]
    row = _row(crm, "web-p8")
    assert (row.status, row.csat, row.nps) == ("answered", 2, 7)
    assert _alerts(crm) == 1


def test_a_declined_survey_is_stored_as_declined(run: Run, crm: Engine) -> None:
    declined = {"survey_outcome": "declined", "survey_csat": NOT_ASKED}
    assert _submit(run, "web-s8", ZHANG, **declined) == ["utter_survey_declined"]
    assert _row(crm, "web-s8").status == "declined"


def test_declining_after_the_csat_keeps_it(run: Run, crm: Engine) -> None:
    """Decided (docs/care_dialogues.md): "跳过" after a CSAT ends the survey as partial."""
    answers = (("survey_csat", "4"), ("survey_nps", "跳过"))
    assert _survey(run, "web-p5", WANG, *answers) == ["utter_survey_declined"]
    row = _row(crm, "web-p5")
    assert (row.status, row.csat, row.nps) == ("partial", 4, None)
    unhappy = (("survey_csat", "2"), ("survey_nps", "不想答"))
    assert _survey(run, "web-p6", ZHANG, *unhappy) == ["utter_survey_detractor"]
    assert (_row(crm, "web-p6").status, _alerts(crm)) == ("partial", 1)


def test_an_incomplete_survey_keeps_what_was_answered(run: Run, crm: Engine) -> None:
    _answer(run, "survey_csat", "5", sender="web-p7", customer=WANG)
    _, slots = _answer(run, "survey_nps", "abc", retries=2, sender="web-p7", customer=WANG)
    assert _submit(run, "web-p7", WANG, **slots) == ["utter_survey_incomplete"]
    row = _row(crm, "web-p7")
    assert (row.status, row.csat) == ("partial", 5)


def test_a_survey_is_not_asked_twice_in_one_conversation(run: Run) -> None:
    _survey(run, "web-s9", WANG, ("survey_csat", "4"), ("survey_nps", "8"))
    later = tracker(
        sender="web-s9", slots=identified(WANG), intent="goodbye", events=[SERVICE_TURN]
    )
    assert slots_set(run(ActionCheckSurveyAtGoodbye(), later)[1])["survey_due"] is False


def test_the_fatigue_window_counts_surveys_on_any_channel(run: Run) -> None:
    _survey(run, "web-earlier", ZHANG, ("survey_csat", "4"), ("survey_nps", "8"))
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


def test_the_schedulers_follow_up_is_asked_once_whatever_conversation_it_lands_in(
    run: Run, crm: Engine
) -> None:
    """A retried EXTERNAL_survey trigger of one outbox row, in another conversation of the
    customer: its delivery is recorded, so the survey is not asked twice."""
    with session_scope(crm) as session:
        a_campaign(session, "delivery_follow_up", NOW)
        message, _ = enqueue_care_message(
            session,
            customer_id=ZHANG,
            campaign_key="delivery_follow_up",
            period="DD202611020001",
            channel="web",
            clock=fixed(NOW),
        )

    def follow_up(sender: str) -> Any:
        entities = [
            {"entity": "care_message_id", "value": str(message.id)},
            {"entity": "product", "value": "空气炸锅"},
        ]
        return tracker(
            sender=sender,
            slots=identified(ZHANG),
            text="EXTERNAL: EXTERNAL_survey",
            intent="EXTERNAL_survey",
            entities=entities,
        )

    first = slots_set(run(ActionCheckSurveyFollowUp(), follow_up("web-f1"))[1])
    assert first["survey_due"] is True and first["survey_trigger"] == "post_purchase"
    again = slots_set(run(ActionCheckSurveyFollowUp(), follow_up("web-f2"))[1])
    assert again == {"survey_due": False}
    with session_scope(crm) as session:
        delivery = find_delivery(session, care_message_id=message.id)
    assert delivery is not None and delivery.conversation_id == "web-f1"
