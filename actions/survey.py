"""Satisfaction surveys inside the dialogue: CSAT, NPS (when due) and an optional comment,
asked at the end of a service conversation or on a post-purchase follow-up (EXTERNAL_survey),
never more often than the fatigue rules allow; stored exactly once; a detractor or a strongly
negative comment starts a follow-up on its own."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn
from actions.feedback import analyse
from actions.forms import CareFormValidation
from actions.identity import channel_of
from actions.rules.survey import is_detractor, parse_comment, parse_csat, parse_nps
from actions.rules.survey_policy import FatigueWindows, PastSurvey, SurveyDecision, survey_decision
from crm_store.audit import record_audit
from crm_store.customers import get_consents
from crm_store.feedback import record_feedback
from crm_store.segments import tag_customer
from crm_store.surveys import (
    ask_survey,
    decline_survey,
    find_survey_response,
    list_survey_responses,
    record_survey_response,
)
from crm_store.tickets import list_tickets, open_ticket


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
NOT_ASKED = "-"  # a form slot the survey does not ask this time (NPS not due, ended early)
MAX_RETRIES = 2  # an unclear answer is asked again at most twice
STRONGLY_NEGATIVE = -0.6
FORM_SLOTS = ("survey_csat", "survey_nps", "survey_comment")
HINTS = {"survey_csat": "utter_survey_csat_hint", "survey_nps": "utter_survey_nps_hint"}


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
    past = [
        PastSurvey(s.asked_at, s.nps is not None or s.status == "asked")
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
        return due_slots(decide(turn, "post_purchase"), "post_purchase")


def ended_early(outcome: str) -> dict[str, Any]:
    return {"survey_outcome": outcome, **{slot: NOT_ASKED for slot in FORM_SLOTS}}


class ValidateSurveyForm(CareFormValidation):
    form = "survey_form"

    def on_activation(self, turn: Turn) -> dict[str, Any]:
        ask_survey(
            turn.session,
            clock=turn.clock,
            conversation_id=turn.crm_conversation_id,
            trigger=turn.tracker.get_slot("survey_trigger") or "end_of_chat",
            channel=channel_of(turn),
            customer_id=turn.customer_id,
        )
        return {}

    def validate_survey_csat(self, value: Any, turn: Turn) -> dict[str, Any]:
        return self.score("survey_csat", parse_csat(str(value or "")), turn)

    def validate_survey_nps(self, value: Any, turn: Turn) -> dict[str, Any]:
        if value == NOT_ASKED:
            return {"survey_nps": NOT_ASKED}
        return self.score("survey_nps", parse_nps(str(value or "")), turn)

    def validate_survey_comment(self, value: Any, turn: Turn) -> dict[str, Any]:
        comment = None if value == NOT_ASKED else parse_comment(str(value or ""))
        return {"survey_comment": comment[:1000] if comment else NOT_ASKED}

    def score(self, slot: str, reading: Any, turn: Turn) -> dict[str, Any]:
        if reading.kind == "score":
            return {slot: str(reading.score), "survey_retries": 0.0}
        if reading.kind == "skip":
            return ended_early("declined")
        retries = int(turn.tracker.get_slot("survey_retries") or 0) + 1
        if retries > MAX_RETRIES:
            return ended_early("incomplete")
        turn.say(HINTS[slot])
        return {slot: None, "survey_retries": float(retries)}


def score_of(turn: Turn, slot: str) -> int | None:
    value = turn.tracker.get_slot(slot)
    return int(value) if value not in (None, NOT_ASKED) else None


class ActionSubmitSurvey(CareAction):
    """Stores the survey once (declined, incomplete or answered) and closes the detractor loop."""

    def name(self) -> str:
        return "action_submit_survey"

    def act(self, turn: Turn) -> Events:
        trigger = turn.tracker.get_slot("survey_trigger") or "end_of_chat"
        outcome = turn.tracker.get_slot("survey_outcome")
        where: dict[str, Any] = {
            "conversation_id": turn.crm_conversation_id,
            "trigger": trigger,
            "channel": channel_of(turn),
            "customer_id": turn.customer_id,
        }
        if outcome == "declined":
            decline_survey(turn.session, clock=turn.clock, **where)
            turn.say("utter_survey_declined")
        elif outcome == "incomplete":
            turn.say("utter_survey_incomplete")  # the row stays "asked": counted, not answered
        else:
            self.store_answers(turn, where)
        return [SlotSet(slot, None) for slot in (*FORM_SLOTS, "survey_due", "survey_outcome")]

    def store_answers(self, turn: Turn, where: dict[str, Any]) -> None:
        comment = turn.tracker.get_slot("survey_comment")
        comment = None if comment in (None, NOT_ASKED) else str(comment)
        analysis = analyse(comment) if comment else None
        csat, nps = score_of(turn, "survey_csat"), score_of(turn, "survey_nps")
        response = record_survey_response(
            turn.session,
            clock=turn.clock,
            csat=csat,
            nps=nps,
            comment=comment,
            themes=analysis.themes if analysis else (),
            polarity=analysis.polarity if analysis else None,
            **where,
        )
        negative = analysis is not None and analysis.score <= STRONGLY_NEGATIVE
        if (is_detractor(csat, nps) or negative) and turn.customer_id is not None:
            follow_up_detractor(turn, turn.customer_id, response.id, comment)
        else:
            turn.say("utter_survey_thanks")


def follow_up_detractor(
    turn: Turn, customer_id: int, response_id: int, comment: str | None
) -> None:
    """A follow-up ticket with an SLA, a call-back mark, an alert for managers, one sentence."""
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
        action="detractor_alert",
        entity="survey_response",
        entity_id=response_id,
        changes={"ticket_id": ticket.id, "customer_id": customer_id},
    )
    turn.say("utter_survey_detractor", due=turn.local(ticket.sla_due_at))


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
