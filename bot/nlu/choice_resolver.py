"""Reads an answer to the choices the bot has just offered as the choice it takes.

The last NLU step: it sees the conversation (Rasa passes a component the tracker when its
`process` asks for one) and, when the bot's last reply offered buttons, reads the customer's
text with `choices.resolve_choice`. A number, a name or a pointing word becomes that button's
intent and entities, exactly as if it had been clicked; an answer that takes a choice without
saying which becomes `choose_option`, and the choices it read go with the message
(`offered_choices` in its parse data), so the question back shows exactly those. Inside a form
the form's own validation reads the answer, so nothing is changed there.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.choices import Choice, Resolution, offered_choices, parse_payload, resolve_choice

log = logging.getLogger(__name__)

CHOOSE_OPTION = "choose_option"
OFFERED_CHOICES = "offered_choices"  # the choices a `choose_option` message took one of
# Below this confidence a reading of the words around a named choice does not outweigh the name.
CONFIDENT = 0.8


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class ChoiceResolver(GraphComponent):
    """See the module docstring."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ChoiceResolver:
        return cls()

    def process(
        self, messages: list[Message], tracker: DialogueStateTracker | None = None
    ) -> list[Message]:
        if tracker is None or tracker.active_loop_name:
            return messages
        choices = offered_choices([event.as_dict() for event in tracker.events])
        if choices:
            for message in messages:
                apply_resolution(message, resolve_choice(message.get(TEXT) or "", choices))
                if (message.get(INTENT) or {}).get("name") == CHOOSE_OPTION:
                    offered = [{"title": c.title, "payload": c.payload} for c in choices]
                    message.set(OFFERED_CHOICES, offered, add_to_output=True)
        return messages


def outweighs_the_name(message: Message, choice: Choice) -> bool:
    """The words around a named choice carry a confident request of their own."""
    intent = message.get(INTENT) or {}
    name, confidence = intent.get("name"), float(intent.get("confidence") or 0.0)
    return name not in (choice.intent, "nlu_fallback", CHOOSE_OPTION) and confidence >= CONFIDENT


def apply_resolution(message: Message, resolution: Resolution) -> None:
    choice = resolution.choice
    if choice is not None:
        if resolution.says_more and outweighs_the_name(message, choice):
            return
        intent, entities = parse_payload(choice.payload)
        _set_reading(message, intent, entities)
        log.debug("An answer took an offered choice (by %s).", resolution.how)
    elif resolution.ask_which:
        _set_reading(message, CHOOSE_OPTION, {})


def _set_reading(message: Message, intent: str, entities: dict[str, Any]) -> None:
    text = message.get(TEXT) or ""
    message.set(INTENT, {"name": intent, "confidence": 1.0}, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [{"name": intent, "confidence": 1.0}], add_to_output=True)
    found = [
        {"entity": key, "value": value, "start": 0, "end": len(text), "extractor": "ChoiceResolver"}
        for key, value in entities.items()
    ]
    message.set(ENTITIES, found, add_to_output=True)
