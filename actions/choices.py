"""choose_option: the customer took one of the choices offered without saying which ("我要这个"
to a list of three offers). The question back shows the choices the NLU step read the answer
against (`offered_choices` in the message's parse data: bot/nlu/choice_resolver.py), which may
be a list offered a few messages ago that the customer has been choosing from since; with none,
it asks what they would like."""

from __future__ import annotations

from typing import Any

from actions.base import CareAction, Events, Turn

OFFERED_CHOICES = "offered_choices"


def offered_buttons(turn: Turn) -> list[dict[str, Any]]:
    offered = turn.tracker.latest_message.get(OFFERED_CHOICES) or []
    return [
        {"title": str(choice["title"]), "payload": str(choice["payload"])}
        for choice in offered
        if isinstance(choice, dict) and "title" in choice and "payload" in choice
    ]


class ActionAskWhichChoice(CareAction):
    def name(self) -> str:
        return "action_ask_which_choice"

    def act(self, turn: Turn) -> Events:
        buttons = offered_buttons(turn)
        if buttons:
            turn.dispatcher.utter_message(response="utter_ask_which_choice", buttons=buttons)
        else:
            turn.say("utter_ask_what_choice")
        return []
