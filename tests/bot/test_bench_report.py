from __future__ import annotations

from pathlib import Path

from bot.bench.report import NOTES_MARKER, split_sections, write_report


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
