"""NLU accuracy benchmark: our pipeline against stock Rasa configs, trained in the same run."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bot.nlu.evaluate import HOLDOUT, OUTSIDE, Example, load_examples, score
from bot.training import default_cache_dir, rasa_env

CONFIGS_DIR = Path(__file__).parent / "configs"
# Bump when the way a result is computed changes, so cached results are not reused.
SCORING_VERSION = "2"
# The parsing process runs on one core with one thread per library: latency per message as one
# worker of a server sees it, comparable across machines with more cores.
ONE_CORE_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}


@dataclass(frozen=True)
class Contender:
    name: str
    config: Path
    key: str = ""  # the short name `--pipelines` selects it by
    without_encoder: bool = False  # our pipeline with the sentence encoder switched off
    epochs: int = 0  # a stock pipeline's DIET and ResponseSelector epochs (0: as configured)

    def config_text(self) -> str:
        """The config this contender trains with."""
        text = self.config.read_text(encoding="utf-8")
        if self.without_encoder:
            return without_encoder(text)
        return with_epochs(text, self.epochs) if self.epochs else text


@dataclass(frozen=True)
class DataSet:
    name: str
    train: list[Example]
    test: list[Example]


@dataclass(frozen=True)
class Result:
    data_set: str
    contender: str
    accuracy: float
    macro_f1: float
    train_s: float
    train_examples: int
    test_examples: int
    measured_at: str = ""
    p50_ms: float = 0.0  # NLU latency per message, one core
    p95_ms: float = 0.0
    peak_mib: float = 0.0  # peak resident memory of the process that loaded the model and parsed
    cpu_p50_ms: float = 0.0  # CPU time per message (0: not measured, an earlier result)
    cpu_p95_ms: float = 0.0


PIPELINES = ("stock-default", "stock-zh", "carebot", "carebot-no-encoder")
# The trained components whose epochs `--stock-epochs` bounds in the stock pipelines.
EPOCH_COMPONENTS = ("DIETClassifier", "ResponseSelector")


def contenders(
    project_dir: Path, only: Sequence[str] = PIPELINES, stock_epochs: int = 0
) -> list[Contender]:
    """The pipelines compared, in table order; `only` picks some by their short names;
    `stock_epochs` (0: Rasa's 100) bounds the stock pipelines' training, and their names say so."""
    config = project_dir / "config.yml"
    suffix = f", DIET {stock_epochs} epochs" if stock_epochs else ""
    every = [
        Contender(
            f"stock default (rasa init){suffix}",
            CONFIGS_DIR / "stock_default.yml",
            "stock-default",
            epochs=stock_epochs,
        ),
        Contender(
            f"stock zh recipe (Jieba+CountVectors+DIET){suffix}",
            CONFIGS_DIR / "stock_zh_recipe.yml",
            "stock-zh",
            epochs=stock_epochs,
        ),
        Contender("carebot (config.yml)", config, "carebot"),
        Contender("carebot without the encoder", config, "carebot-no-encoder", True),
    ]
    return [c for c in every if c.key in only]


def rasa_default_pipeline() -> list[dict[str, Any]]:
    """The pipeline Rasa fills in for a config without one (its own default_config.yml)."""
    import rasa.engine.recipes

    path = Path(rasa.engine.recipes.__file__).parent / "config_files" / "default_config.yml"
    pipeline: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["pipeline"]
    return pipeline


def with_epochs(config_text: str, epochs: int) -> str:
    """A stock config whose DIET and ResponseSelector train for `epochs` (Rasa's default pipeline
    written out where the config leaves it empty, as `rasa init`'s does): a bounded measurement
    of stock Rasa on the large sets, where 100 epochs take hours on two cores."""
    config = yaml.safe_load(config_text) or {}
    if not config.get("pipeline"):
        config["pipeline"] = rasa_default_pipeline()
    for component in config["pipeline"]:
        if component.get("name") in EPOCH_COMPONENTS:
            component["epochs"] = epochs
    return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)


def without_encoder(config_text: str) -> str:
    """`config.yml` with the sentence encoders off: what runs where the packages are missing."""
    config = yaml.safe_load(config_text)
    for component in config.get("pipeline") or []:
        for key in ("encoder", "second_encoder"):
            if key in component:
                component[key] = "none"
    return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)


def read_csv(path: Path) -> list[Example]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [Example(row["text"].strip(), row["label"]) for row in csv.DictReader(handle)]


def public_data_set(root: Path, name: str, train: Sequence[str], test: Sequence[str]) -> DataSet:
    return DataSet(
        name,
        [e for part in train for e in read_csv(root / name / part)],
        [e for part in test for e in read_csv(root / name / part)],
    )


# `--sets` names of our own data, each scored on one gated set: its row's name and its file.
OUR_SETS = {"own": ("carebot held-out", HOLDOUT), "outside": ("carebot outside", OUTSIDE)}


def our_data_set(project_dir: Path, key: str) -> DataSet:
    """`data/nlu/` as the training split, one of the gated sets as the test split."""
    name, test = OUR_SETS[key]
    train = load_examples(project_dir / "data" / "nlu")
    return DataSet(name, train, load_examples(project_dir / test))


def write_nlu_yaml(examples: Sequence[Example], path: Path) -> None:
    """Writes examples as Rasa NLU YAML (retrieval sub-intents kept as `faq/x`)."""
    by_intent: dict[str, list[str]] = defaultdict(list)
    for example in examples:
        if example.text not in by_intent[example.intent]:
            by_intent[example.intent].append(example.text)
    nlu = [
        {"intent": intent, "examples": "".join(f"- {_escape(t)}\n" for t in texts)}
        for intent, texts in sorted(by_intent.items())
    ]
    path.write_text(yaml.safe_dump({"version": "3.1", "nlu": nlu}, allow_unicode=True))


def _escape(text: str) -> str:
    return " ".join(text.split())


def train_nlu(config: Path, nlu_file: Path, out_dir: Path, name: str, cwd: Path) -> float:
    """Trains an NLU-only model in a subprocess; returns the wall time in seconds."""
    command = [sys.executable, "-m", "rasa", "train", "nlu", "--config", str(config)]
    command += ["--nlu", str(nlu_file), "--out", str(out_dir), "--fixed-model-name", name]
    started = time.perf_counter()
    # Rasa reuses trained components from its cache (.rasa/cache): that would time a lookup.
    env = rasa_env({"RASA_MAX_CACHE_SIZE": "0"})
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def run_one(data_set: DataSet, contender: Contender, work: Path, project_dir: Path) -> Result:
    nlu_file = work / f"{data_set.name}.yml".replace(" ", "_")
    if not nlu_file.exists():
        write_nlu_yaml(data_set.train, nlu_file)
    name = f"{data_set.name}-{contender.config.stem}".replace(" ", "_")
    if contender.without_encoder:
        name += "-no-encoder"
    if contender.epochs:
        name += f"-{contender.epochs}-epochs"
    config = work / f"{name}.yml"  # Rasa writes defaults into a config it trains from
    config.write_text(contender.config_text(), "utf-8")
    train_s = train_nlu(config, nlu_file, work, name, project_dir)
    probe = probe_model(work / f"{name}.tar.gz", [e.text for e in data_set.test], work, project_dir)
    expected = [e.intent for e in data_set.test]
    accuracy, macro_f1, _ = score(expected, probe["predicted"])
    latencies = np.asarray(probe["latencies_ms"])
    cpu = np.asarray(probe["cpu_ms"])
    return Result(
        data_set=data_set.name,
        contender=contender.name,
        accuracy=accuracy,
        macro_f1=macro_f1,
        train_s=train_s,
        train_examples=len(data_set.train),
        test_examples=len(data_set.test),
        p50_ms=float(np.percentile(latencies, 50)),
        p95_ms=float(np.percentile(latencies, 95)),
        peak_mib=float(probe["peak_mib"]),
        cpu_p50_ms=float(np.percentile(cpu, 50)),
        cpu_p95_ms=float(np.percentile(cpu, 95)),
    )


def probe_model(model: Path, texts: list[str], work: Path, cwd: Path) -> dict[str, Any]:
    """Parses `texts` with `model` in a process pinned to one core (`bot.bench.nlu_probe`)."""
    texts_file, out_file = work / "probe-texts.json", work / "probe-out.json"
    texts_file.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    command = [sys.executable, "-m", "bot.bench.nlu_probe", str(model), str(texts_file)]
    command.append(str(out_file))
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    subprocess.run(command, cwd=cwd, env=rasa_env(ONE_CORE_ENV), check=True, capture_output=True)
    result: dict[str, Any] = json.loads(out_file.read_text(encoding="utf-8"))
    return result


def result_key(data_set: DataSet, contender: Contender, project_dir: Path) -> str:
    """A hash of everything that decides a result: config, custom components, data, versions."""
    import rasa

    digest = hashlib.sha256(f"{SCORING_VERSION}|{rasa.__version__}|".encode())
    config = contender.config.read_bytes()
    digest.update(config)
    digest.update(b"no-encoder" if contender.without_encoder else b"")
    digest.update(f"epochs={contender.epochs}".encode() if contender.epochs else b"")
    if b"bot.nlu." in config:  # our own components and dictionary shape only our pipeline
        for path in sorted((project_dir / "bot" / "nlu").glob("*.py")):
            digest.update(path.read_bytes())
        for path in sorted((project_dir / "data" / "jieba").glob("*")):
            digest.update(path.read_bytes())
    for part in (data_set.train, data_set.test):
        digest.update(json.dumps([dataclasses.astuple(e) for e in part]).encode())
    return digest.hexdigest()[:20]


def results_cache() -> Path:
    return default_cache_dir().parent / "bench" / "nlu"


def cached_result(key: str) -> Result | None:
    path = results_cache() / f"{key}.json"
    if not path.exists():
        return None
    fields = {f.name for f in dataclasses.fields(Result)}
    return Result(**{k: v for k, v in json.loads(path.read_text()).items() if k in fields})


def store_result(key: str, result: Result) -> None:
    results_cache().mkdir(parents=True, exist_ok=True)
    (results_cache() / f"{key}.json").write_text(json.dumps(dataclasses.asdict(result)))


def run_nlu_bench(
    data_sets: Sequence[DataSet],
    project_dir: Path,
    *,
    fresh: bool = False,
    pipelines: Sequence[str] = PIPELINES,
    stock_epochs: int = 0,
) -> list[Result]:
    """Trains and scores every contender on every set; reuses a result whose inputs are unchanged
    unless `fresh` (each row says when it was measured)."""
    results = []
    with tempfile.TemporaryDirectory(prefix="carebot-bench-") as tmp:
        for data_set in data_sets:
            for contender in contenders(project_dir, pipelines, stock_epochs):
                key = result_key(data_set, contender, project_dir)
                result = None if fresh else cached_result(key)
                if result is None:
                    result = run_one(data_set, contender, Path(tmp), project_dir)
                    result = dataclasses.replace(result, measured_at=_now())
                    store_result(key, result)
                print(_row(result), flush=True)
                results.append(result)
    return results


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def _row(r: Result) -> str:
    return (
        f"| {r.data_set} | {r.contender} | {r.accuracy:.3f} | {r.macro_f1:.3f} | "
        f"{r.train_s:.0f} s | {_cpu(r)} | {r.p50_ms:.1f} / {r.p95_ms:.1f} ms | "
        f"{r.peak_mib:.0f} MiB | {r.train_examples}/{r.test_examples} | {r.measured_at} |"
    )


def _cpu(r: Result) -> str:
    return f"{r.cpu_p50_ms:.1f} / {r.cpu_p95_ms:.1f} ms" if r.cpu_p50_ms else "not measured"


def results_table(results: Sequence[Result]) -> str:
    header = [
        "| data set | pipeline | accuracy | macro-F1 | training time | NLU CPU p50 / p95 per "
        "message | NLU wall p50 / p95 (one core) | peak memory | train/test examples | measured |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    return "\n".join(header + [_row(r) for r in results])
