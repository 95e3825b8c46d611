from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from bot.nlu.linear import LinearModel, blend


def counts(rows: list[list[int]]) -> scipy.sparse.csr_matrix:
    return scipy.sparse.csr_matrix(np.array(rows, dtype=np.float64))


TRAIN = counts([[3, 0, 0, 1], [2, 0, 0, 0], [0, 2, 0, 1], [0, 3, 0, 0], [0, 0, 2, 1], [0, 0, 3, 0]])
LABELS = ["greet", "greet", "thank", "thank", "goodbye", "goodbye"]


def test_learns_separable_intents_and_returns_a_distribution() -> None:
    model = LinearModel.fit(TRAIN, LABELS, c=1.0)
    probabilities = model.probabilities(counts([[0, 1, 0, 0]]), temperature=5.0)
    assert max(probabilities, key=probabilities.__getitem__) == "thank"
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert set(probabilities) == {"greet", "thank", "goodbye"}


def test_a_higher_temperature_is_more_confident() -> None:
    model = LinearModel.fit(TRAIN, LABELS, c=1.0)
    soft = model.probabilities(counts([[1, 0, 0, 0]]), temperature=1.0)["greet"]
    sharp = model.probabilities(counts([[1, 0, 0, 0]]), temperature=10.0)["greet"]
    assert sharp > soft > 1 / 3


def test_two_intents_work_although_sklearn_keeps_one_row() -> None:
    model = LinearModel.fit(TRAIN[:4], LABELS[:4], c=1.0)
    greet = model.probabilities(counts([[2, 0, 0, 0]]), temperature=5.0)
    thank = model.probabilities(counts([[0, 2, 0, 0]]), temperature=5.0)
    assert greet["greet"] > 0.5 > thank["greet"]


def test_saved_model_predicts_the_same(tmp_path: Path) -> None:
    model = LinearModel.fit(TRAIN, LABELS, c=1.0)
    model.save(tmp_path / "w.npz", tmp_path / "classes.json")
    loaded = LinearModel.load(tmp_path / "w.npz", tmp_path / "classes.json")
    sample = counts([[1, 1, 0, 1]])
    assert loaded.probabilities(sample, 5.0) == pytest.approx(model.probabilities(sample, 5.0))


def test_blend_averages_by_weight_and_sorts() -> None:
    ranking = blend({"a": 0.8, "b": 0.2}, {"a": 0.2, "b": 0.6, "c": 0.2}, weight=0.5)
    assert ranking == [("a", 0.5), ("b", pytest.approx(0.4)), ("c", 0.1)]


def test_blend_without_an_earlier_ranking_is_the_linear_model() -> None:
    assert blend({"a": 0.7, "b": 0.3}, {}, weight=0.5) == [("a", 0.7), ("b", 0.3)]
