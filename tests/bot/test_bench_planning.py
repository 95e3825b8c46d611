"""The campaign planning rows of the CRM benchmark section (issue 7)."""

from __future__ import annotations

from bot.bench import crm
from bot.bench.crm_timings import CrmBench, PlanTiming


def test_the_crm_section_shows_each_planned_day_with_its_rows_and_time() -> None:
    result = CrmBench(
        customers=1_000_000,
        database="PostgreSQL 15.20",
        seed_s=200.0,
        analytics_s=20.0,
        rows={"customers": 1_000_000},
        queries=(),
        planning=(
            PlanTiming("2026-11-22", "ordinary day", 21.04, 810_000),
            PlanTiming("2027-01-01", "festival (new_year)", 48.26, 1_250_000),
        ),
    )
    lines = crm.crm_section(result, "2026-11-22 15:00 UTC", "2 cores")
    assert "| campaign planning (at 1,000,000 customers) | day | outbox rows written " in (
        "".join(line for line in lines if line.startswith("| campaign planning"))
    )
    assert "| ordinary day | 2026-11-22 | 810,000 | 21.0 s |" in lines
    assert "| festival (new_year) | 2027-01-01 | 1,250,000 | 48.3 s |" in lines
