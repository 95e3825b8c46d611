"""`carebot nlu-gate`: every gated set is evaluated, and one set below its floor fails the gate."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot import cli, training
from bot.nlu import evaluate
from bot.nlu.evaluate import HOLDOUT, NLU_GATES, OUTSIDE, Report


def _gate(
    monkeypatch: pytest.MonkeyPatch, scores: dict[str, float], data: Path | None = None
) -> tuple[int, list[str]]:
    """Runs the gate with each set's accuracy and macro-F1 given by `scores` (file name ->
    score); returns the exit code and the files evaluated, in order."""
    evaluated: list[str] = []

    def fake_evaluate(model: Path, examples: list[str]) -> Report:
        name = examples[0]
        evaluated.append(name)
        return Report(scores[name], scores[name], 1, {}, [])

    monkeypatch.setattr(training, "ensure_model", lambda project_dir: Path("model.tar.gz"))
    monkeypatch.setattr(evaluate, "load_examples", lambda path: [Path(path).name])
    monkeypatch.setattr(evaluate, "evaluate_model", fake_evaluate)
    args = argparse.Namespace(data=data, min_accuracy=0.96, min_macro_f1=0.96)
    return cli.cmd_nlu_gate(args), evaluated


def test_every_gated_set_is_evaluated_and_the_gate_passes_when_each_meets_its_floor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, evaluated = _gate(monkeypatch, {"holdout.yml": 0.96, "outside.yml": 0.95})

    assert code == 0
    assert evaluated == [Path(path).name for path in NLU_GATES] == ["holdout.yml", "outside.yml"]
    assert tuple(NLU_GATES) == (HOLDOUT, OUTSIDE)


def test_one_set_below_its_floor_fails_the_gate_and_the_others_are_still_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, evaluated = _gate(monkeypatch, {"holdout.yml": 0.95, "outside.yml": 0.99})

    assert code == 1
    assert evaluated == ["holdout.yml", "outside.yml"]


def test_the_outside_set_has_its_own_lower_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _gate(monkeypatch, {"holdout.yml": 0.99, "outside.yml": 0.949})[0] == 1
    assert _gate(monkeypatch, {"holdout.yml": 0.99, "outside.yml": 0.95})[0] == 0


def test_data_gates_one_file_at_the_floors_given(monkeypatch: pytest.MonkeyPatch) -> None:
    code, evaluated = _gate(monkeypatch, {"mine.yml": 0.959}, data=Path("mine.yml"))

    assert (code, evaluated) == (1, ["mine.yml"])
