"""Trains the Rasa model only when its inputs changed: a cache keyed by their content hash.

The key covers everything that shapes the model (domain, config, training data, the custom NLU
components and the Rasa version), so an unchanged tree never retrains, in tests or in `make run`.
Trained models are also kept in a per-user cache outside the work tree, so a fresh clone of an
unchanged tree on the same machine (CI) reuses them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

MODEL_PREFIX = "carebot-"
_INPUT_FILES = ("domain.yml", "config.yml")
_INPUT_DIRS = ("data", "bot/nlu")


def model_inputs(project_dir: Path) -> list[Path]:
    """The files whose content decides the trained model, in a stable order."""
    files = [project_dir / name for name in _INPUT_FILES]
    for folder in _INPUT_DIRS:
        files += sorted(p for p in (project_dir / folder).rglob("*") if _is_model_input(p))
    return files


def _is_model_input(path: Path) -> bool:
    return path.is_file() and "__pycache__" not in path.parts


def fingerprint(project_dir: Path, files: Iterable[Path], salt: str) -> str:
    """A hex digest of the files' paths and contents plus `salt` (the Rasa version)."""
    digest = hashlib.sha256(salt.encode())
    for path in files:
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def model_salt() -> str:
    """The versions that shape a model besides its files: Rasa's and the sentence encoders'
    (whose weights ship in their packages, so a new release means new vectors)."""
    import rasa  # imported late: loading Rasa takes seconds

    from bot.nlu.encoder import PACKAGES, encoder_version

    versions = "|".join(f"{name}={encoder_version(name)}" for name in PACKAGES)
    return f"{rasa.__version__}|{versions}"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("CAREBOT_MODEL_CACHE", Path(base) / "carebot" / "models"))


def ensure_model(project_dir: Path, *, force: bool = False, cache_dir: Path | None = None) -> Path:
    """Returns the path of a model trained on the current tree, training only if needed."""
    key = fingerprint(project_dir, model_inputs(project_dir), salt=model_salt())
    name = f"{MODEL_PREFIX}{key}.tar.gz"
    target = project_dir / "models" / name
    cached = (cache_dir or default_cache_dir()) / name
    if not force and target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _training_lock(target):  # a second caller waits for the first's model
        if not force and target.exists():
            return target
        if not force and cached.exists():
            shutil.copyfile(cached, target)
            return target
        _train(project_dir, fixed_name=name.removesuffix(".tar.gz"))
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(target, cached)
    return target


@contextmanager
def _training_lock(target: Path) -> Iterator[None]:
    with (target.parent / ".training.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _train(project_dir: Path, *, fixed_name: str) -> None:
    command = [sys.executable, "-m", "rasa", "train", "--domain", "domain.yml"]
    command += ["--config", "config.yml", "--data", "data"]
    command += ["--out", "models", "--fixed-model-name", fixed_name]
    # Rasa's progress goes to stderr so that stdout carries only what our commands print.
    subprocess.run(command, cwd=project_dir, env=rasa_env(), check=True, stdout=sys.stderr)


# One BLAS thread per Rasa process. The sentence encoder's matrix products are one message
# at a time, too small to share; OpenBLAS's extra worker thread then spun (sched_yield) beside
# the event loop for minutes after each product, half of a 2-core machine's CPU at one
# conversation at a time (docs/benchmarks.md, session 7). An operator's own setting wins.
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def rasa_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for every Rasa process we start: telemetry off, quiet TensorFlow, one
    BLAS thread."""
    env = {**ONE_BLAS_THREAD, **os.environ}
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONHASHSEED="0",
        **(extra or {}),
    )
    return env
