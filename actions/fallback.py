"""nlu_fallback: ask to rephrase with suggestions; the second miss in a row offers a person."""

from __future__ import annotations

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn

MISSES_BEFORE_OFFERING_A_PERSON = 2


def misses_in_a_row(turn: Turn) -> int:
    """How many of the latest customer messages in a row were not understood."""
    misses = 0
    for intent in reversed(turn.customer_intents()):
        if intent != "nlu_fallback":
            break
        misses += 1
    return misses


class ActionRephrase(CareAction):
    def name(self) -> str:
        return "action_rephrase"

    def act(self, turn: Turn) -> Events:
        misses = misses_in_a_row(turn)
        if misses >= MISSES_BEFORE_OFFERING_A_PERSON:
            turn.say("utter_offer_human")
        else:
            turn.say("utter_please_rephrase")
        return [SlotSet("fallback_streak", float(misses))]
