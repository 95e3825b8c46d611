from __future__ import annotations

from pathlib import Path

from bot.bench import dashboard
from bot.bench.dashboard_timings import PAGES, DashboardBench, FigureTiming
from bot.bench.report import NOTES_MARKER, split_sections, write_report

VIEWS = ("90 days", "365 days")


def _result(slow_ms: float = 700.0) -> DashboardBench:
    timings = []
    for view in VIEWS:
        for figures in PAGES.values():
            for figure in figures:
                ms = slow_ms if (view, figure) == ("365 days", "campaigns") else 10.0
                timings.append(FigureTiming(view, figure, 3, ms))
    return DashboardBench({"handoffs": 1200, "care_messages": 45_000}, tuple(timings))


def test_the_section_has_a_page_table_a_figure_table_and_the_slowest_page() -> None:
    lines = dashboard.dashboard_section(_result(), 1_000_000, "2026-11-22 14:00 UTC", "2 cores")
    assert lines[0] == "## Manager dashboard at scale"
    assert "handoffs 1,200, care_messages 45,000" in lines[2]
    assert "the slowest page here took 720 ms." in lines[2]
    assert "| page (its figures read one after another) | 90 days | 365 days |" in lines
    assert "| campaigns | 30 ms | 720 ms |" in lines
    assert "| campaigns | 10.0 (3) | 700.0 (3) |" in lines
    assert lines[-2] == "Measured on 2026-11-22 14:00 UTC: 2 cores."


def test_a_page_over_one_second_stands_out() -> None:
    lines = dashboard.dashboard_section(_result(1500.0), 10, "now", "m")
    assert "| campaigns | 30 ms | **1520 ms (over 1 s)** |" in lines


def test_the_section_is_its_own_and_the_notes_stay(tmp_path: Path) -> None:
    output = tmp_path / "benchmarks.md"
    output.write_text(f"# Benchmarks\n\n## Other\n\nkept\n\n{NOTES_MARKER}\nnotes\n")
    write_report(output, dashboard.dashboard_section(_result(), 5, "now", "m"), "cmd")
    text = output.read_text()
    assert set(split_sections(text.partition(NOTES_MARKER)[0])) == {
        "Other",
        "Manager dashboard at scale",
    }
    assert text.endswith("notes\n")
