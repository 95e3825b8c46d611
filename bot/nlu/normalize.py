"""Turns Traditional Chinese into Simplified before tokenisation.

Customers from Hong Kong, Taiwan and overseas write 訂單/積分/退貨; the training data is mostly
Simplified. Normalising first lets one model understand both, and keeps entity offsets intact.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from opencc import OpenCC
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


@lru_cache(maxsize=1)
def _converter() -> OpenCC:
    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Converts `text` to Simplified Chinese without changing its length.

    Entity annotations are character offsets, so a phrase conversion that changes the length
    falls back to a character-by-character conversion.
    """
    converted: str = _converter().convert(text)
    if len(converted) == len(text):
        return converted
    return "".join(_char_to_simplified(ch) for ch in text)


def _char_to_simplified(ch: str) -> str:
    converted: str = _converter().convert(ch)
    return converted if len(converted) == 1 else ch


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class TraditionalToSimplified(GraphComponent):
    """A pipeline step that rewrites the message text to Simplified Chinese in place."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TraditionalToSimplified:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Normalises the examples and their annotated entity values alike.

        An annotated value left in Traditional script while its text became Simplified would
        teach the EntitySynonymMapper to map 吹风机 back to 吹風機.
        """
        self.process(training_data.training_examples)
        for example in training_data.training_examples:
            for entity in example.get(ENTITIES) or []:
                if isinstance(entity.get("value"), str):
                    entity["value"] = to_simplified(entity["value"])
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if text:
                message.set(TEXT, to_simplified(text))
        return messages
