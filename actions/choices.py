"""choose_option: the customer took one of the choices just offered without saying which
("我要这个" to a list of three offers). The question back shows the same choices again; with
nothing offered just before, it asks what they would like."""

from __future__ import annotations

from typing import Any

from actions.base import CareAction, Events, Turn


def last_offered_buttons(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The buttons of the bot's last message that had any, since the customer's message before
    this one (the one being answered is the newest user event)."""
    users_seen = 0
    for event in reversed(events):
        if event.get("event") == "user":
            users_seen += 1
            if users_seen > 1:
                return []
        elif event.get("event") == "bot" and users_seen == 1:
            buttons = (event.get("data") or {}).get("buttons") or []
            if buttons:
                return [dict(button) for button in buttons]
    return []


class ActionAskWhichChoice(CareAction):
    def name(self) -> str:
        return "action_ask_which_choice"

    def act(self, turn: Turn) -> Events:
        buttons = last_offered_buttons(turn.tracker.events)
        if buttons:
            turn.dispatcher.utter_message(response="utter_ask_which_choice", buttons=buttons)
        else:
            turn.say("utter_ask_what_choice")
        return []
