"""A linear intent model blended with DIET's ranking.

On a few thousand short Chinese messages a linear SVM over the same sparse n-gram features is
as accurate as DIET and fails on different examples; averaging the two probability rankings beats
either alone (measured in docs/benchmarks.md). The component reuses the
sparse features the CountVectorsFeaturizers already computed, so it adds no vocabulary of its own.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

_WEIGHTS_FILE = "linear_intent.npz"
_CLASSES_FILE = "linear_intent_classes.json"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentEnsemble(GraphComponent, IntentClassifier):
    """A linear SVM on sparse sentence features, averaged with the earlier ranking."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # weight: the linear model's share of the blended probability (1.0: linear alone);
        # temperature: how sharply SVM margins turn into probabilities (softmax of margin × t).
        return {"weight": 0.5, "C": 1.0, "temperature": 5.0, "ranking_length": 10}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: LinearModel | None = None,
    ) -> None:
        self.config = config
        self._model_storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LinearIntentEnsemble:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if m.features_present(TEXT)]
        labels = [str(m.get(INTENT)) for m in examples]
        if len(set(labels)) < 2:
            logger.warning("LinearIntentEnsemble needs at least two intents; not trained.")
            return self._resource
        self.model = LinearModel.fit(_sentence_matrix(examples), labels, c=self.config["C"])
        with self._model_storage.write_to(self._resource) as directory:
            self.model.save(directory / _WEIGHTS_FILE, directory / _CLASSES_FILE)
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentEnsemble:
        try:
            with model_storage.read_from(resource) as directory:
                model = LinearModel.load(directory / _WEIGHTS_FILE, directory / _CLASSES_FILE)
        except (ValueError, FileNotFoundError):
            model = None
        return cls(config, model_storage, resource, model)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if self.model is not None and message.features_present(TEXT):
                self._blend_into(message)
        return messages

    def _blend_into(self, message: Message) -> None:
        assert self.model is not None
        linear = self.model.probabilities(_sentence_matrix([message]), self.config["temperature"])
        earlier = {r["name"]: r["confidence"] for r in message.get(INTENT_RANKING_KEY) or []}
        ranking = blend(linear, earlier, self.config["weight"])[: self.config["ranking_length"]]
        top_name, top_confidence = ranking[0]
        message.set(INTENT, {"name": top_name, "confidence": top_confidence}, add_to_output=True)
        message.set(
            INTENT_RANKING_KEY,
            [{"name": name, "confidence": confidence} for name, confidence in ranking],
            add_to_output=True,
        )


def blend(
    linear: dict[str, float], earlier: dict[str, float], weight: float
) -> list[tuple[str, float]]:
    """Weighted average of two rankings, best first; without an earlier ranking, linear alone."""
    if not earlier:
        weight = 1.0
    names = set(linear) | set(earlier)
    scores = {n: weight * linear.get(n, 0.0) + (1 - weight) * earlier.get(n, 0.0) for n in names}
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _sentence_matrix(messages: list[Message]) -> scipy.sparse.csr_matrix:
    rows = []
    for message in messages:
        _, sentence = message.get_sparse_features(TEXT)
        assert sentence is not None
        rows.append(scipy.sparse.csr_matrix(sentence.features))
    return scipy.sparse.vstack(rows).tocsr()


class LinearModel:
    """Sublinear-tf, idf-weighted, l2-normalised features into a one-vs-rest linear SVM."""

    def __init__(
        self, classes: list[str], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray
    ) -> None:
        self.classes = classes
        self.idf = idf
        self.coef = coef
        self.intercept = intercept

    @classmethod
    def fit(cls, counts: scipy.sparse.csr_matrix, labels: list[str], *, c: float) -> LinearModel:
        from sklearn.svm import LinearSVC

        document_frequency = np.asarray((counts > 0).sum(axis=0)).ravel()
        idf = np.log((1 + counts.shape[0]) / (1 + document_frequency)) + 1
        classifier = LinearSVC(C=c)
        classifier.fit(_weigh(counts, idf), labels)
        coef, intercept = classifier.coef_, classifier.intercept_
        if coef.shape[0] == 1:  # two classes: sklearn keeps one row; the softmax needs both
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
        return cls(
            [str(c) for c in classifier.classes_],
            idf.astype(np.float32),
            coef.astype(np.float32),
            intercept.astype(np.float32),
        )

    def probabilities(
        self, counts: scipy.sparse.csr_matrix, temperature: float
    ) -> dict[str, float]:
        margins = np.asarray(_weigh(counts, self.idf) @ self.coef.T).ravel() + self.intercept
        scores = margins * temperature
        exp = np.exp(scores - scores.max())
        return dict(zip(self.classes, (exp / exp.sum()).tolist(), strict=True))

    def save(self, weights: Any, classes: Any) -> None:
        np.savez_compressed(weights, idf=self.idf, coef=self.coef, intercept=self.intercept)
        classes.write_text(json.dumps(self.classes, ensure_ascii=False))

    @classmethod
    def load(cls, weights: Any, classes: Any) -> LinearModel:
        with np.load(weights, allow_pickle=False) as arrays:
            return cls(
                json.loads(classes.read_text()),
                arrays["idf"],
                arrays["coef"],
                arrays["intercept"],
            )


def _weigh(counts: scipy.sparse.csr_matrix, idf: np.ndarray) -> scipy.sparse.csr_matrix:
    weighted = counts.astype(np.float64).tocsr(copy=True)
    weighted.data = np.log1p(np.abs(weighted.data))
    weighted = weighted.multiply(idf.reshape(1, -1)).tocsr()
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return scipy.sparse.diags(1 / norms) @ weighted
