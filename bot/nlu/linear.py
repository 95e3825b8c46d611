"""A linear intent model blended with DIET's ranking.

On a few thousand short Chinese messages a linear SVM over character n-grams of the whole message
plus its jieba words is more accurate than DIET and fails on different examples; blending the two
probability rankings beats either alone (measured in docs/benchmarks.md). Character n-grams span
word boundaries here, unlike Rasa's per-token `char_wb` features, so a wrong segmentation costs
little.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

_WEIGHTS_FILE = "linear_intent.npz"
_META_FILE = "linear_intent.json"


def message_terms(text: str, words: Sequence[str], max_ngram: int = 4) -> list[str]:
    """The features of one message: character 1..n-grams of the whole text, and its words."""
    padded = f" {text.lower()} "
    chars = [
        f"c:{padded[i : i + n]}"
        for n in range(1, max_ngram + 1)
        for i in range(len(padded) - n + 1)
    ]
    return chars + [f"w:{word.lower()}" for word in words]


def _terms_of(message: Message) -> list[str]:
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    return message_terms(message.get(TEXT) or "", [token.text for token in tokens])


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentEnsemble(GraphComponent, IntentClassifier):
    """A linear SVM on n-gram features, blended with the ranking of the classifier before it."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # weight: the linear model's share of the blended probability (1.0: linear alone);
        # temperature: how sharply SVM margins become probabilities (softmax of margin × t).
        return {"weight": 0.7, "C": 1.0, "temperature": 5.0, "ranking_length": 10}

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
        examples = training_data.intent_examples
        labels = [str(m.get(INTENT)) for m in examples]
        if len(set(labels)) < 2:
            logger.warning("LinearIntentEnsemble needs at least two intents; not trained.")
            return self._resource
        terms = [_terms_of(m) for m in examples]
        self.model = LinearModel.fit(terms, labels, c=self.config["C"])
        with self._model_storage.write_to(self._resource) as directory:
            self.model.save(directory)
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
                model: LinearModel | None = LinearModel.load(directory)
        except (ValueError, FileNotFoundError):
            model = None
        return cls(config, model_storage, resource, model)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if self.model is not None and message.get(TEXT):
                self._blend_into(message)
        return messages

    def _blend_into(self, message: Message) -> None:
        assert self.model is not None
        linear = self.model.probabilities(_terms_of(message), self.config["temperature"])
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


class LinearModel:
    """Sublinear tf-idf, l2-normalised term vectors into a one-vs-rest linear SVM."""

    def __init__(
        self,
        vocabulary: dict[str, int],
        classes: list[str],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
    ) -> None:
        self.vocabulary = vocabulary
        self.classes = classes
        self.idf = idf
        self.coef = coef
        self.intercept = intercept

    @classmethod
    def fit(cls, terms: Sequence[Sequence[str]], labels: list[str], *, c: float) -> LinearModel:
        from sklearn.svm import LinearSVC

        vocabulary = {t: i for i, t in enumerate(sorted({t for row in terms for t in row}))}
        counts = _count(terms, vocabulary)
        document_frequency = np.asarray((counts > 0).sum(axis=0)).ravel()
        idf = np.log((1 + counts.shape[0]) / (1 + document_frequency)) + 1
        classifier = LinearSVC(C=c)
        classifier.fit(_weigh(counts, idf), labels)
        coef, intercept = classifier.coef_, classifier.intercept_
        if coef.shape[0] == 1:  # two classes: sklearn keeps one row; the softmax needs both
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
        return cls(
            vocabulary,
            [str(label) for label in classifier.classes_],
            idf.astype(np.float32),
            coef.astype(np.float32),
            intercept.astype(np.float32),
        )

    def probabilities(self, terms: Sequence[str], temperature: float) -> dict[str, float]:
        vector = _weigh(_count([terms], self.vocabulary), self.idf)
        margins = np.asarray(vector @ self.coef.T).ravel() + self.intercept
        scores = margins * temperature
        exp = np.exp(scores - scores.max())
        return dict(zip(self.classes, (exp / exp.sum()).tolist(), strict=True))

    def save(self, directory: Path) -> None:
        np.savez_compressed(
            directory / _WEIGHTS_FILE, idf=self.idf, coef=self.coef, intercept=self.intercept
        )
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        meta = {"classes": self.classes, "terms": terms}
        (directory / _META_FILE).write_text(json.dumps(meta, ensure_ascii=False))

    @classmethod
    def load(cls, directory: Path) -> LinearModel:
        meta = json.loads((directory / _META_FILE).read_text())
        with np.load(directory / _WEIGHTS_FILE, allow_pickle=False) as arrays:
            return cls(
                {term: i for i, term in enumerate(meta["terms"])},
                meta["classes"],
                arrays["idf"],
                arrays["coef"],
                arrays["intercept"],
            )


def _count(terms: Sequence[Sequence[str]], vocabulary: dict[str, int]) -> scipy.sparse.csr_matrix:
    rows, columns, values = [], [], []
    for row, row_terms in enumerate(terms):
        for term, count in Counter(t for t in row_terms if t in vocabulary).items():
            rows.append(row)
            columns.append(vocabulary[term])
            values.append(float(count))
    shape = (len(terms), len(vocabulary))
    return scipy.sparse.csr_matrix((values, (rows, columns)), shape=shape)


def _weigh(counts: scipy.sparse.csr_matrix, idf: np.ndarray) -> scipy.sparse.csr_matrix:
    weighted = counts.copy()
    weighted.data = np.log1p(weighted.data)
    weighted = weighted.multiply(idf.reshape(1, -1)).tocsr()
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return scipy.sparse.csr_matrix(scipy.sparse.diags(1 / norms) @ weighted)
