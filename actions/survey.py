"""Satisfaction surveys inside the dialogue: CSAT, NPS (when due) and an optional comment,
asked at the end of a service conversation or on a post-purchase follow-up (EXTERNAL_survey),
never more often than the fatigue rules allow; each answer stored as it is given (a survey left
midway keeps its CSAT); a detractor or a strongly negative comment starts a follow-up on its
own, once per survey."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn
from actions.campaign_messages import first_delivery
from actions.feedback import analyse
from actions.forms import CareFormValidation, NotAnAnswer, form_slots, required_slots
from actions.identity import channel_of, is_external_trigger
from actions.rules.care import care_message_id_of
from actions.rules.survey import (
    is_detractor,
    parse_comment,
    parse_csat,
    parse_nps,
    reads_as_request,
)
from actions.rules.survey_policy import FatigueWindows, PastSurvey, SurveyDecision, survey_decision
from crm_store.audit import list_audit_entries, record_audit
from crm_store.customers import get_consents
from crm_store.errors import NotFound
from crm_store.feedback import record_feedback
from crm_store.outbox import get_care_message
from crm_store.segments import tag_customer
from crm_store.surveys import (
    SurveyResponse,
    ask_survey,
    complete_survey,
    decline_survey,
    find_survey_response,
    list_survey_responses,
    record_survey_answer,
)
from crm_store.tickets import Ticket, describe_ticket, get_ticket, list_tickets, open_ticket


def warm_up_feedback_analysis() -> None:
    """In the action server (CAREBOT_WARM_UP=1, set by `carebot run`), build the spaCy pipeline
    before serving: the first build takes seconds (spaCy imports TensorFlow when it is
    installed), longer than a customer should wait for the first survey comment. Done while
    the actions load, so the server reports healthy only when it is ready."""
    if os.environ.get("CAREBOT_WARM_UP") == "1":
        analyse("物流很快")


SERVICE_INTENTS = {
    "order_status",
    "points_balance",
    "redeem_points",
    "faq",
    "complaint",
    "return_refund",
    "update_contact",
    "ask_offers",
    "use_coupon",
    "unsubscribe",
    "subscribe",
}
# At the comment question, a message read as one of these intents is a request of its own when it
# is phrased as one (a complaint is a comment however it is phrased); an opt-out always is.
ASKING_INTENTS = (SERVICE_INTENTS - {"complaint"}) | {"bot_challenge"}
ALWAYS_REQUESTS = {"unsubscribe"}
NOT_ASKED = "-"  # a form slot the survey does not ask this time (NPS not due, ended early)
MAX_RETRIES = 2  # an unclear answer is asked again at most twice
STRONGLY_NEGATIVE = -0.6
SURVEY_FORM = "survey_form"
HINTS = {"survey_csat": "utter_survey_csat_hint", "survey_nps": "utter_survey_nps_hint"}
DETRACTOR_ALERT = "detractor_alert"  # the audit entry that links a survey to its follow-up


def fatigue_windows() -> FatigueWindows:
    """CAREBOT_SURVEY_CSAT_DAYS (7) and CAREBOT_SURVEY_NPS_DAYS (90)."""
    return FatigueWindows(
        csat=timedelta(days=float(os.environ.get("CAREBOT_SURVEY_CSAT_DAYS", "7"))),
        nps=timedelta(days=float(os.environ.get("CAREBOT_SURVEY_NPS_DAYS", "90"))),
    )


def decide(turn: Turn, trigger: str) -> SurveyDecision:
    if find_survey_response(
        turn.session, conversation_id=turn.crm_conversation_id, trigger=trigger
    ):
        return SurveyDecision(False, refusal="too_soon")  # once per conversation and trigger
    customer_id = turn.customer_id
    if customer_id is None:  # an anonymous sender could stuff the results (docs/security.md)
        return SurveyDecision(False, refusal="anonymous")
    past = [  # an unfinished survey may have asked NPS without an answer: count it as asked
        PastSurvey(s.asked_at, s.nps is not None or s.status in ("asked", "partial"))
        for s in list_survey_responses(turn.session, customer_id=customer_id, limit=20)
    ]
    open_complaints = [
        t for t in list_tickets(turn.session, customer_id=customer_id) if t.kind == "complaint"
    ]
    return survey_decision(
        turn.now,
        past,
        consents_to_surveys=get_consents(turn.session, customer_id=customer_id).get("survey", True),
        has_open_complaint=any(t.status in ("open", "in_progress") for t in open_complaints),
        windows=fatigue_windows(),
    )


def had_service(turn: Turn) -> bool:
    """A service conversation: the customer asked for something we handle in this session."""
    return any(intent in SERVICE_INTENTS for intent in turn.customer_intents())


def due_slots(decision: SurveyDecision, trigger: str) -> Events:
    if not decision.ask:
        return [SlotSet("survey_due", False)]
    return [
        SlotSet("survey_due", True),
        SlotSet("survey_trigger", trigger),
        SlotSet("survey_nps", None if decision.with_nps else NOT_ASKED),
        SlotSet("survey_retries", 0.0),
        SlotSet("survey_outcome", None),
    ]


class ActionCheckSurveyAtGoodbye(CareAction):
    """At the end of a service conversation: is a survey due? (The rules branch on survey_due.)"""

    def name(self) -> str:
        return "action_check_survey_at_goodbye"

    def act(self, turn: Turn) -> Events:
        if not had_service(turn):
            return [SlotSet("survey_due", False)]
        return due_slots(decide(turn, "end_of_chat"), "end_of_chat")


class ActionCheckSurveyFollowUp(CareAction):
    """EXTERNAL_survey from the scheduler (回访): the product and order come with the intent."""

    def name(self) -> str:
        return "action_check_survey_follow_up"

    def act(self, turn: Turn) -> Events:
        decision = decide(turn, "post_purchase")
        if decision.ask and not first_follow_up(turn):
            return [SlotSet("survey_due", False)]
        return due_slots(decision, "post_purchase")


def first_follow_up(turn: Turn) -> bool:
    """The scheduler's follow-up is an outbox row: asked once, anywhere, its delivery recorded
    like a care message's (a retried trigger asks nothing). A trigger that names no row of
    this customer records nothing."""
    message_id = care_message_id_of(turn.tracker.latest_message.get("entities") or [])
    if message_id is None or not is_external_trigger(turn):
        return True
    try:
        message = get_care_message(turn.session, message_id=message_id)
    except NotFound:
        return True
    return message.customer_id != turn.customer_id or first_delivery(turn, message)


def ended_early(outcome: str, turn: Turn) -> dict[str, Any]:
    """Every question of the form filled as not asked, which ends it."""
    slots = required_slots(turn.domain, SURVEY_FORM)
    return {"survey_outcome": outcome, **{slot: NOT_ASKED for slot in slots}}


def survey_where(turn: Turn) -> dict[str, Any]:
    """Which survey row a turn of the survey form writes: its conversation and trigger."""
    return {
        "conversation_id": turn.crm_conversation_id,
        "trigger": turn.tracker.get_slot("survey_trigger") or "end_of_chat",
        "channel": channel_of(turn),
        "customer_id": turn.customer_id,
    }


class ValidateSurveyForm(CareFormValidation):
    """Each answer is stored the moment it is read (the row turns `partial`), so a survey left
    midway keeps what was answered; an unhappy answer opens the follow-up at once."""

    form = SURVEY_FORM

    def on_activation(self, turn: Turn) -> dict[str, Any]:
        ask_survey(turn.session, clock=turn.clock, **survey_where(turn))
        return {}

    def validate_survey_csat(self, value: Any, turn: Turn) -> dict[str, Any]:
        reading = parse_csat(str(value or ""))
        if reading.kind == "score":
            store_answer(turn, csat=reading.score)
        return self.score("survey_csat", reading, turn)

    def validate_survey_nps(self, value: Any, turn: Turn) -> dict[str, Any]:
        if value == NOT_ASKED:
            return {"survey_nps": NOT_ASKED}
        reading = parse_nps(str(value or ""))
        if reading.kind == "score":
            store_answer(turn, nps=reading.score)
        return self.score("survey_nps", reading, turn)

    def validate_survey_comment(self, value: Any, turn: Turn) -> dict[str, Any]:
        comment = None if value == NOT_ASKED else parse_comment(str(value or ""))
        if comment and asks_for_something(turn, comment):
            raise NotAnAnswer(comment)
        if not comment:
            return {"survey_comment": NOT_ASKED}
        comment = comment[:1000]
        analysis = analyse(comment)
        store_answer(
            turn,
            negative=analysis.score <= STRONGLY_NEGATIVE,
            comment=comment,
            themes=analysis.themes,
            polarity=analysis.polarity,
        )
        return {"survey_comment": comment}

    def score(self, slot: str, reading: Any, turn: Turn) -> dict[str, Any]:
        if reading.kind == "score":
            return {slot: str(reading.score), "survey_retries": 0.0}
        if reading.kind == "skip":
            return ended_early("declined", turn)
        retries = int(turn.tracker.get_slot("survey_retries") or 0) + 1
        if retries > MAX_RETRIES:
            return ended_early("incomplete", turn)
        turn.say(HINTS[slot])
        return {slot: None, "survey_retries": float(retries)}


def asks_for_something(turn: Turn, text: str) -> bool:
    intent = (turn.tracker.latest_message.get("intent") or {}).get("name")
    return intent in ALWAYS_REQUESTS or (intent in ASKING_INTENTS and reads_as_request(text))


def store_answer(turn: Turn, *, negative: bool = False, **answer: Any) -> None:
    """Store one answer; the first answer that makes the survey unhappy (CSAT 1-2, NPS 0-6, a
    strongly negative comment) opens its follow-up, once per survey."""
    response = record_survey_answer(turn.session, clock=turn.clock, **answer, **survey_where(turn))
    if response.status != "partial" or turn.customer_id is None:
        return  # a finished survey is not changed by a late answer
    unhappy = is_detractor(response.csat, response.nps) or negative
    ticket = follow_up_of(turn, response.id)
    if unhappy and ticket is None:
        follow_up_detractor(turn, turn.customer_id, response.id, response.comment)
    elif ticket is not None and "comment" in answer and response.comment:
        # the follow-up opened on a low score: the comment given after it tells the agent why
        describe_ticket(
            turn.session, ticket_id=ticket.id, description=response.comment, clock=turn.clock
        )


def score_of(turn: Turn, slot: str) -> int | None:
    value = turn.tracker.get_slot(slot)
    return int(value) if value not in (None, NOT_ASKED) else None


class ActionSubmitSurvey(CareAction):
    """The survey's end: its answers are stored already (answered when it ran to the end,
    partial when it ended after some, declined or no reply without any). Says goodbye, or
    when the answers opened a follow-up, when the customer will be called back."""

    def name(self) -> str:
        return "action_submit_survey"

    def act(self, turn: Turn) -> Events:
        outcome = turn.tracker.get_slot("survey_outcome")
        where = survey_where(turn)
        response: SurveyResponse | None
        if outcome == "declined":
            response = decline_survey(turn.session, clock=turn.clock, **where)
            closing = "utter_survey_declined"
        elif outcome == "incomplete":  # no reply, or partial when something was answered
            response = find_survey_response(
                turn.session, conversation_id=where["conversation_id"], trigger=where["trigger"]
            )
            closing = "utter_survey_incomplete"
        else:
            csat, nps = score_of(turn, "survey_csat"), score_of(turn, "survey_nps")
            if csat is not None or nps is not None:  # stored when validated: no change then
                store_answer(turn, csat=csat, nps=nps)
            response = complete_survey(turn.session, clock=turn.clock, **where)
            closing = "utter_survey_thanks"
        ticket = follow_up_of(turn, response.id) if response else None
        if ticket is not None:
            turn.say("utter_survey_detractor", due=turn.local(ticket.sla_due_at))
        else:
            turn.say(closing)
        slots = (*form_slots(turn.domain, SURVEY_FORM), "survey_outcome")
        return [SlotSet(slot, None) for slot in slots]


def follow_up_of(turn: Turn, response_id: int) -> Ticket | None:
    """The follow-up ticket of a survey, found by its detractor alert (as the dashboard finds
    it), or None."""
    for entry in list_audit_entries(turn.session, entity="survey_response", entity_id=response_id):
        if entry.action == DETRACTOR_ALERT:
            return get_ticket(turn.session, ticket_id=int(entry.changes["ticket_id"]))
    return None


def follow_up_detractor(
    turn: Turn, customer_id: int, response_id: int, comment: str | None
) -> None:
    """A follow-up ticket with an SLA, a call-back mark and an alert for managers; the
    customer hears of it when the survey ends."""
    ticket = open_ticket(
        turn.session,
        clock=turn.clock,
        customer_id=customer_id,
        kind="complaint",
        subject=f"survey #{response_id}: unhappy customer",
        description=comment or f"survey #{response_id}",
        priority="high",
    )
    tag_customer(turn.session, clock=turn.clock, customer_id=customer_id, tag="callback")
    record_audit(
        turn.session,
        clock=turn.clock,
        actor="survey",
        action=DETRACTOR_ALERT,
        entity="survey_response",
        entity_id=response_id,
        changes={"ticket_id": ticket.id, "customer_id": customer_id},
    )


class ActionRecordFeedback(CareAction):
    """give_feedback outside a survey: acknowledged, kept with its themes and polarity."""

    def name(self) -> str:
        return "action_record_feedback"

    def act(self, turn: Turn) -> Events:
        text = str(turn.tracker.latest_message.get("text") or "").strip()
        if text:
            analysis = analyse(text)
            record_feedback(
                turn.session,
                clock=turn.clock,
                conversation_id=turn.crm_conversation_id,
                channel=channel_of(turn),
                text=text,
                themes=analysis.themes,
                polarity=analysis.polarity,
                customer_id=turn.customer_id,
            )
        turn.say("utter_thank_feedback")
        return []


warm_up_feedback_analysis()
