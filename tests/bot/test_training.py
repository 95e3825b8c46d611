from __future__ import annotations

from pathlib import Path

import pytest

from bot import training


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    (project / "data" / "nlu").mkdir(parents=True)
    (project / "bot" / "nlu" / "__pycache__").mkdir(parents=True)
    (project / "domain.yml").write_text("version: '3.1'\n")
    (project / "config.yml").write_text("language: zh\n")
    (project / "data" / "nlu" / "chitchat.yml").write_text("nlu: []\n")
    (project / "bot" / "nlu" / "normalize.py").write_text("x = 1\n")
    return project


def key(project: Path) -> str:
    return training.fingerprint(project, training.model_inputs(project), salt="3.6.21")


def test_fingerprint_is_stable_for_an_unchanged_tree(tree: Path) -> None:
    assert key(tree) == key(tree)


@pytest.mark.parametrize(
    "changed", ["domain.yml", "config.yml", "data/nlu/chitchat.yml", "bot/nlu/normalize.py"]
)
def test_fingerprint_changes_with_any_model_input(tree: Path, changed: str) -> None:
    before = key(tree)
    (tree / changed).write_text((tree / changed).read_text() + "# edit\n")
    assert key(tree) != before


def test_fingerprint_changes_when_a_file_is_added_or_renamed(tree: Path) -> None:
    before = key(tree)
    (tree / "data" / "nlu" / "chitchat.yml").rename(tree / "data" / "nlu" / "greetings.yml")
    assert key(tree) != before


def test_bytecode_caches_do_not_count(tree: Path) -> None:
    before = key(tree)
    (tree / "bot" / "nlu" / "__pycache__" / "normalize.cpython-310.pyc").write_bytes(b"\0")
    assert key(tree) == before


def test_rasa_version_is_part_of_the_key(tree: Path) -> None:
    files = training.model_inputs(tree)
    assert training.fingerprint(tree, files, "3.6.21") != training.fingerprint(tree, files, "3.7")


class FakeTrainer:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, project_dir: Path, *, fixed_name: str) -> None:
        self.calls += 1
        (project_dir / "models" / f"{fixed_name}.tar.gz").write_bytes(b"model")


def test_trains_once_then_reuses_the_model(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = FakeTrainer()
    monkeypatch.setattr(training, "_train", trainer)
    first = training.ensure_model(tree, cache_dir=tmp_path / "cache")
    second = training.ensure_model(tree, cache_dir=tmp_path / "cache")
    assert first == second and first.read_bytes() == b"model"
    assert trainer.calls == 1


def test_fresh_clone_takes_the_model_from_the_cache(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = FakeTrainer()
    monkeypatch.setattr(training, "_train", trainer)
    model = training.ensure_model(tree, cache_dir=tmp_path / "cache")
    model.unlink()  # a fresh clone has no models/
    assert training.ensure_model(tree, cache_dir=tmp_path / "cache").exists()
    assert trainer.calls == 1


def test_a_change_retrains_and_force_always_trains(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = FakeTrainer()
    monkeypatch.setattr(training, "_train", trainer)
    first = training.ensure_model(tree, cache_dir=tmp_path / "cache")
    (tree / "config.yml").write_text("language: zh\npipeline: []\n")
    second = training.ensure_model(tree, cache_dir=tmp_path / "cache")
    training.ensure_model(tree, cache_dir=tmp_path / "cache", force=True)
    assert first != second
    assert trainer.calls == 3


def test_rasa_processes_run_one_blas_thread_unless_the_operator_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert training.rasa_env()["OPENBLAS_NUM_THREADS"] == "1"
    assert training.rasa_env()["RASA_TELEMETRY_ENABLED"] == "false"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    assert training.rasa_env()["OPENBLAS_NUM_THREADS"] == "4"
