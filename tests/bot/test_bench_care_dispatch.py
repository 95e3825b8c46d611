"""The care dispatch bench: a run against the stub Rasa sends (not fails) every row, with one
worker or several, and the report says what rate a million members' day needs."""

from __future__ import annotations

from bot.bench.care_dispatch import DispatchRate, measure_stub, section


def test_the_stub_run_sends_every_row_with_several_workers() -> None:
    result = measure_stub(40, workers=3)
    assert (result.messages, result.workers, result.replicas) == (40, 3, 1)
    assert result.sent >= 35  # the rest: demo customers without consent, skipped
    assert result.per_second > 0


def test_the_section_has_the_runs_and_the_rate_a_million_members_day_needs() -> None:
    lines = section([DispatchRate("real Rasa", 300, 15.0, workers=4, replicas=2)], 30, 4)
    assert "| real Rasa | 2 | 4 | 300 | 15.0 | 20.0 |" in lines
    assert "| ordinary day | 832,363 | 12 h | 19.3 |" in lines
    assert "| ordinary day | 832,363 | 8 h | 28.9 |" in lines
