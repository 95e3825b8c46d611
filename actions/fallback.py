"""Misses: a message the assistant did not understand (nlu_fallback, Rasa's core fallback, an
answer to no question) or cannot help with (out_of_scope). The first gets the rephrase menu or
the out-of-scope answer; the second in a row says in words that a person can take over
(docs/handoff.md), with the button."""

from __future__ import annotations

from typing import Any

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn

MISSES_BEFORE_OFFERING_A_PERSON = 2
MISSED_INTENTS = ("nlu_fallback", "out_of_scope")
# What answers a miss: this action, Rasa's core fallback, and the out-of-scope answer of
# trackers from before out_of_scope went through this action.
MISS_ANSWERS = ("action_rephrase", "action_default_fallback", "utter_out_of_scope")
NOT_AN_ANSWER = ("action_listen", "action_session_start", "action_extract_slots")


def answers_to_messages(events: list[dict[str, Any]]) -> list[tuple[str | None, str | None]]:
    """(intent, the first action that answered it) for each customer message, oldest first;
    None for a message nothing answered yet (the one being answered now, or one sent while a
    person had the conversation)."""
    answered: list[tuple[str | None, str | None]] = []
    for event in events:
        if event.get("event") == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            answered.append((intent, None))
        elif event.get("event") == "action" and answered and answered[-1][1] is None:
            name = event.get("name")
            if name not in NOT_AN_ANSWER:
                answered[-1] = (answered[-1][0], name)
    return answered


def is_miss(intent: str | None, answer: str | None) -> bool:
    return intent in MISSED_INTENTS or answer in MISS_ANSWERS


def misses_in_a_row(turn: Turn) -> int:
    """How many of the latest customer messages in a row were misses, this one (being answered
    by this action) included."""
    earlier = answers_to_messages(turn.tracker.events)[:-1]
    misses = 1
    for intent, answer in reversed(earlier):
        if not is_miss(intent, answer):
            break
        misses += 1
    return misses


class ActionRephrase(CareAction):
    def name(self) -> str:
        return "action_rephrase"

    def act(self, turn: Turn) -> Events:
        misses = misses_in_a_row(turn)
        intent = (turn.tracker.latest_message.get("intent") or {}).get("name")
        if misses >= MISSES_BEFORE_OFFERING_A_PERSON:
            turn.say("utter_offer_human")
        elif intent == "out_of_scope":
            turn.say("utter_out_of_scope")
        else:
            turn.say("utter_please_rephrase")
        return [SlotSet("fallback_streak", float(misses))]
