"""Form validation backed by the CRM, and leaving a form on request.

rasa-sdk's FormValidationAction is async and per-slot; ours runs in the CRM transaction of
`CareAction`, so a validator may read and write the CRM. A validator returns the slots to set
(None for the validated slot asks again) and may say something first. A validator that finds
the message is not an answer at all but a request ("快递到哪了？" when asked for a comment) raises
`NotAnAnswer`: the form steps aside, the request is served, and the form asks again.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any

from rasa_sdk.events import ActionExecutionRejected, ActiveLoop, SlotSet
from rasa_sdk.types import DomainDict

from actions.base import CareAction, Events, Turn

Validator = Callable[[Any, Turn], dict[str, Any]]


class NotAnAnswer(Exception):
    """The message the form extracted is a request of its own, not an answer to the question."""


class CareFormValidation(CareAction):
    """`validate_<form>`: calls `on_activation(turn)` when the form starts, then
    `validate_<slot>(value, turn)` for each slot the form just extracted and for each slot
    `on_activation` filled. A value is validated the same way however it got into the form:
    an amount read from the message that started the form is checked against the balance
    before the form asks to confirm it, exactly like an amount given when asked."""

    @property
    @abstractmethod
    def form(self) -> str:
        """The form this validates; subclasses set it as a class attribute."""

    def name(self) -> str:
        return f"validate_{self.form}"

    def act(self, turn: Turn) -> Events:
        slots: dict[str, Any] = {}
        if turn.tracker.get_slot("requested_slot") is None:
            slots.update(self.on_activation(turn))
        candidates = {**slots, **turn.tracker.slots_to_validate()}
        for slot, value in candidates.items():
            validator: Validator | None = getattr(self, f"validate_{slot}", None)
            # None is a slot being cleared (e.g. by the action that started the form), not an
            # answer the customer gave.
            if validator is not None and value is not None:
                try:
                    slots.update(validator(value, turn))
                except NotAnAnswer:
                    return [*self.slot_events({**slots, slot: None}), self.step_aside()]
            if slots.get("requested_slot", "") is None:
                break  # a validator ended the form: nothing else is asked or checked
        return self.slot_events(slots)

    @staticmethod
    def slot_events(slots: dict[str, Any]) -> Events:
        return [SlotSet(slot, value) for slot, value in slots.items()]

    def step_aside(self) -> ActionExecutionRejected:
        """Rasa lets the policies answer the message, then the form asks its question again."""
        return ActionExecutionRejected(self.form)

    def on_activation(self, turn: Turn) -> dict[str, Any]:
        return {}


# What a form keeps besides its required slots (domain.yml's `forms`), forgotten with them when
# the customer leaves the form: the state of the one-time code, the survey that was due.
EXTRA_SLOTS = {
    "identify_form": ("otp_state",),
    "survey_form": ("survey_due",),
}


def required_slots(domain: DomainDict, form: str) -> tuple[str, ...]:
    """The form's required slots as the domain Rasa sent declares them."""
    spec = (domain.get("forms") or {}).get(form) or {}
    return tuple(spec.get("required_slots", ()))


def form_slots(domain: DomainDict, form: str) -> tuple[str, ...]:
    """Everything the form holds: its required slots, then its extra slots."""
    return (*required_slots(domain, form), *EXTRA_SLOTS.get(form, ()))


def asks_for_a_person(turn: Turn) -> bool:
    return (turn.tracker.latest_message.get("intent") or {}).get("name") == "request_human"


class ActionStopForm(CareAction):
    """The customer does not want to go on ("算了"): leave the form, forget its answers."""

    def name(self) -> str:
        return "action_stop_form"

    def act(self, turn: Turn) -> Events:
        form = turn.tracker.active_loop.get("name")
        if form == "identify_form":
            turn.say("utter_identify_stopped")
        elif not asks_for_a_person(turn):  # the handoff that follows speaks for itself
            turn.say("utter_form_stopped")
        slots = form_slots(turn.domain, form) if form else ()
        return [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            SlotSet("pending_intent", None),
            *(SlotSet(slot, None) for slot in slots),
        ]
