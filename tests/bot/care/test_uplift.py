"""The status line's uplift: the dashboard's statistics (tested against Newcombe's published
examples in tests/crm_store/test_crm_dashboard_stats.py), described in one line."""

from __future__ import annotations

import pytest

from bot.care.uplift import describe, uplift
from crm_store.dashboard import stats


def test_the_status_line_uses_the_dashboards_interval() -> None:
    result = uplift(treated_returned=30, treated=100, control_returned=20, control=100)
    assert result == stats.uplift(30, 100, 20, 100)
    assert (result.treated_rate, result.control_rate) == (0.30, 0.20)
    assert result.difference == pytest.approx(0.10)
    assert describe(result) == (
        "reactivation treated 30.0% vs control 20.0%: uplift +10.0 pts (95% CI -2.0 .. +21.7)"
    )


def test_a_large_experiment_gives_a_narrow_interval_that_excludes_zero() -> None:
    result = uplift(2_400, 10_000, 2_000, 10_000)
    assert result.low is not None and result.high is not None
    assert 0 < result.low < 0.04 < result.high < 0.06


def test_an_empty_arm_makes_the_uplift_unmeasurable() -> None:
    result = uplift(5, 10, 0, 0)
    assert (result.treated_rate, result.control_rate, result.difference) == (0.5, None, None)
    assert describe(result).startswith("uplift: not measurable yet")


def test_certain_outcomes_in_both_arms_keep_an_honest_interval() -> None:
    result = uplift(10, 10, 0, 10)
    assert result.difference == 1.0 and result.high == 1.0
    assert result.low is not None and 0.5 < result.low < 0.7  # not a zero-width interval


@pytest.mark.parametrize(("returned", "total"), [(-1, 10), (11, 10), (0, -1)])
def test_counts_that_are_not_a_proportion_are_refused(returned: int, total: int) -> None:
    with pytest.raises(ValueError, match="not a proportion"):
        uplift(returned, total, 1, 2)
