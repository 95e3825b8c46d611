from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu.linear import LinearModel, blend, message_terms

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
