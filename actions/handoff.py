"""Human handoff (docs/handoff.md): queue the conversation for a person and pause the bot.

While paused, Rasa records the customer's messages and stays silent; the staff console answers
through Rasa's HTTP API and, when the agent closes, resumes the conversation and triggers
`EXTERNAL_handoff_closed`. Outside staffed hours nobody is coming soon, so a known customer's
request becomes a ticket (a message) and the bot keeps talking; an anonymous one stays queued.
"""

from __future__ import annotations

import os
from datetime import timedelta

from rasa_sdk.events import ConversationPaused

from actions.base import CareAction, Events, Turn
from actions.identity import channel_of
from actions.rules.handoff import StaffedHours, handoff_reason, parse_staffed_hours
from actions.rules.survey import is_detractor
from actions.survey import decide, due_slots
from crm_store.handoff_queue import (
    close_by_customer,
    expected_wait_minutes,
    find_last_closed_handoff,
    priority_for,
)
from crm_store.handoffs import Handoff, Route, find_open_handoff, request_handoff
from crm_store.interactions import ensure_conversation
from crm_store.models import TIERS
from crm_store.surveys import RESPONDED, ask_survey, find_survey_response
from crm_store.tickets import Ticket, open_ticket

HANDOFF_ENDED = "utter_handoff_ended"
TOP_TIER = TIERS[-1]
REPLY_AFTER_OPENING = timedelta(hours=1)  # a message left after hours is answered by then
SURVEY_TRIGGER = "after_handoff"


def staffed_hours() -> StaffedHours:
    """CAREBOT_HANDOFF_HOURS in CAREBOT_HANDOFF_TIMEZONE (actions/rules/handoff.py)."""
    return parse_staffed_hours(
        os.environ.get("CAREBOT_HANDOFF_HOURS"), os.environ.get("CAREBOT_HANDOFF_TIMEZONE", "")
    )


def route_of(turn: Turn, reason: str) -> Route:
    """Priority from the member's tier and the reason; Rasa's ids to reach them again."""
    customer = turn.customer()
    return Route(
        priority_for(customer.tier if customer else None, reason),
        turn.conversation_id,
        turn.tracker.get_latest_input_channel(),
    )


def queue(turn: Turn, reason: str) -> Handoff:
    return request_handoff(
        turn.session,
        clock=turn.clock,
        conversation_id=turn.crm_conversation_id,
        channel=channel_of(turn),
        reason=reason,
        customer_id=turn.customer_id,
        route=route_of(turn, reason),
    )


def leave_message(turn: Turn, customer_id: int, subject: str) -> Ticket:
    """A ticket of kind `message` for a known customer, tied to this conversation."""
    ensure_conversation(
        turn.session,
        conversation_id=turn.crm_conversation_id,
        channel=channel_of(turn),
        customer_id=customer_id,
        clock=turn.clock,
    )
    return open_ticket(
        turn.session,
        clock=turn.clock,
        customer_id=customer_id,
        kind="message",
        subject=subject,
        description=latest_customer_text(turn) or subject,
        conversation_id=turn.crm_conversation_id,
    )


def latest_customer_text(turn: Turn) -> str | None:
    texts = [e.get("text") for e in turn.tracker.events if e.get("event") == "user"]
    return next((t for t in reversed(texts) if t and not t.startswith("/")), None)


def after_hours(turn: Turn, hours: StaffedHours, reason: str) -> Events:
    """Nobody is on duty: a message (ticket) for a known customer, else a queued handoff."""
    reply_at = turn.local(hours.next_opening(turn.now) + REPLY_AFTER_OPENING)
    if turn.customer_id is None:
        queue(turn, reason)
        turn.say("utter_handoff_after_hours_queued", hours=hours.label(), reply_at=reply_at)
        return []
    ticket = leave_message(turn, turn.customer_id, f"after hours: {reason}")
    turn.say(
        "utter_handoff_after_hours", hours=hours.label(), ticket_id=ticket.id, reply_at=reply_at
    )
    return []


def hand_over(turn: Turn, reason: str, response: str = "utter_handoff_queued") -> Events:
    """Queue for a person, tell the customer how long, and pause the bot."""
    handoff = queue(turn, reason)
    if handoff.state == "waiting":
        ahead, minutes = expected_wait_minutes(turn.session, handoff=handoff)
        customer = turn.customer()
        turn.say(response, ahead=ahead, minutes=minutes, tier=customer.tier if customer else "")
    return [ConversationPaused()]


class ActionRequestHuman(CareAction):
    """The customer asks for a person (also the "keep waiting" button after a timeout)."""

    def name(self) -> str:
        return "action_request_human"

    def act(self, turn: Turn) -> Events:
        reason = handoff_reason(turn.customer_intents()[-3:])
        hours = staffed_hours()
        if not hours.is_open(turn.now):
            return after_hours(turn, hours, reason)
        return hand_over(turn, reason)


# The bot's questions whose "yes" means "a person, please" (their 转人工 buttons say the same).
OFFERS_OF_A_PERSON = ("utter_offer_human", "utter_complaint_ticket")


def last_bot_response(turn: Turn) -> str | None:
    """The response the bot said last, before the customer's latest message."""
    for event in reversed(turn.tracker.events):
        if event.get("event") == "bot":
            return (event.get("metadata") or {}).get("utter_action")
    return None


class ActionAnswerYes(CareAction):
    """ "好的" outside a form: a yes to "需要为您转接人工客服吗？" hands over, as the button would,
    instead of "好的，收到"; any other yes is acknowledged."""

    def name(self) -> str:
        return "action_answer_yes"

    def act(self, turn: Turn) -> Events:
        if last_bot_response(turn) in OFFERS_OF_A_PERSON:
            return ActionRequestHuman().act(turn)
        turn.say("utter_acknowledge")
        return []


class ActionHandoffTopTier(CareAction):
    """After a complaint is filed: the top tier goes straight to a person, ahead of the queue."""

    def name(self) -> str:
        return "action_handoff_top_tier"

    def act(self, turn: Turn) -> Events:
        customer = turn.customer()
        if customer is None or customer.tier != TOP_TIER:
            return []
        if not staffed_hours().is_open(turn.now):
            return []  # the complaint ticket already promises an answer by its due time
        return hand_over(turn, "complaint", "utter_handoff_priority")


class ActionHandoffDetractor(CareAction):
    """After a survey: a detractor is queued for a person (the bot keeps talking; the customer
    was already told when they will be called back)."""

    def name(self) -> str:
        return "action_handoff_detractor"

    def act(self, turn: Turn) -> Events:
        trigger = turn.tracker.get_slot("survey_trigger") or "end_of_chat"
        response = find_survey_response(
            turn.session, conversation_id=turn.crm_conversation_id, trigger=trigger
        )
        if response is None or turn.customer_id is None:
            return []
        if response.status in RESPONDED and is_detractor(response.csat, response.nps):
            queue(turn, "detractor")
        return []


class ActionHandoffTimeout(CareAction):
    """The console found nobody picked up in time: offer to wait, leave a message or go back."""

    def name(self) -> str:
        return "action_handoff_timeout"

    def act(self, turn: Turn) -> Events:
        handoff = find_open_handoff(turn.session, conversation_id=turn.crm_conversation_id)
        if handoff is None:
            return []
        if handoff.state == "active":
            return [ConversationPaused()]  # an agent was faster than the timeout
        turn.say("utter_handoff_no_pickup")
        return []


class ActionLeaveMessage(CareAction):
    """Instead of waiting: a message (ticket) for a known customer; an anonymous customer stays
    in the queue without the bot being paused."""

    def name(self) -> str:
        return "action_leave_message"

    def act(self, turn: Turn) -> Events:
        handoff = find_open_handoff(turn.session, conversation_id=turn.crm_conversation_id)
        if handoff is not None and handoff.state == "active":
            return [ConversationPaused()]  # the agent is there and reads it
        if turn.customer_id is None:
            if handoff is None:
                queue(turn, "customer_request")
            turn.say("utter_handoff_message_kept")
            return []
        ticket = leave_message(turn, turn.customer_id, "left a message instead of waiting")
        if handoff is not None:
            close_by_customer(
                turn.session, handoff_id=handoff.id, outcome="message_left", clock=turn.clock
            )
        turn.say(
            "utter_handoff_message_left",
            ticket_id=ticket.id,
            reply_at=turn.local(ticket.sla_due_at),
        )
        return []


class ActionCancelHandoff(CareAction):
    """Back to the bot: the waiting handoff is closed (an agent already on it keeps it)."""

    def name(self) -> str:
        return "action_cancel_handoff"

    def act(self, turn: Turn) -> Events:
        handoff = find_open_handoff(turn.session, conversation_id=turn.crm_conversation_id)
        if handoff is not None and handoff.state == "active":
            return [ConversationPaused()]
        if handoff is not None:
            close_by_customer(
                turn.session, handoff_id=handoff.id, outcome="returned_to_bot", clock=turn.clock
            )
        turn.say("utter_handoff_cancelled")
        return []


class ActionHandoffClosed(CareAction):
    """The agent closed the handoff (the console resumed the conversation): say so and ask
    about the agent's service when the survey rules allow (the rules branch on survey_due)."""

    def name(self) -> str:
        return "action_handoff_closed"

    def act(self, turn: Turn) -> Events:
        turn.say(HANDOFF_ENDED)
        decision = decide(turn, SURVEY_TRIGGER)
        if decision.ask:
            self.attribute_to_agent(turn)
        return due_slots(decision, SURVEY_TRIGGER)

    def attribute_to_agent(self, turn: Turn) -> None:
        """The survey row names the agent, so reports can rate agents (--by agent)."""
        handoff = find_last_closed_handoff(turn.session, conversation_id=turn.crm_conversation_id)
        ask_survey(
            turn.session,
            clock=turn.clock,
            conversation_id=turn.crm_conversation_id,
            trigger=SURVEY_TRIGGER,
            channel=channel_of(turn),
            customer_id=turn.customer_id,
            agent_id=handoff.agent_id if handoff else None,
        )
