"""The uplift interval against the worked examples of Newcombe (1998), Stat Med 17:873-890."""

from __future__ import annotations

import pytest

from crm_store.dashboard.stats import Interval, uplift, wilson


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 10, 0.0, 0.2775)],
)
def test_wilson_interval_of_one_proportion(
    successes: int, trials: int, low: float, high: float
) -> None:
    interval = wilson(successes, trials)
    assert (round(interval.low, 4), round(interval.high, 4)) == (low, high)


@pytest.mark.parametrize(
    ("counts", "low", "high"),
    [
        ((56, 70, 48, 80), 0.0524, 0.3339),
        ((9, 10, 3, 10), 0.1705, 0.8090),
        ((6, 7, 2, 7), 0.0582, 0.8062),
        ((5, 56, 0, 29), -0.0381, 0.1926),
        ((0, 10, 0, 20), -0.1611, 0.2775),
        ((10, 10, 0, 20), 0.6791, 1.0),
    ],
)
def test_newcombe_hybrid_score_interval_of_the_difference(
    counts: tuple[int, int, int, int], low: float, high: float
) -> None:
    result = uplift(*counts)
    assert result.difference == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert (round(result.low or 0, 4), round(result.high or 0, 4)) == (low, high)


def test_no_interval_until_both_arms_are_measured() -> None:
    result = uplift(3, 10, 0, 0)
    assert (result.treated_rate, result.control_rate, result.difference) == (0.3, None, None)
    assert (result.low, result.high) == (None, None)


def test_rates_of_zero_and_one_keep_a_width() -> None:
    """Where the Wald interval would collapse to a point, the score interval does not."""
    result = uplift(0, 5, 0, 5)
    assert result.low is not None and result.high is not None
    assert result.low < 0 < result.high


@pytest.mark.parametrize("counts", [(3, 2, 0, 1), (-1, 2, 0, 1), (0, 1, 2, 1), (0, -1, 0, 1)])
def test_counts_that_are_not_proportions_are_refused(counts: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        uplift(*counts)


def test_a_proportion_of_nothing_has_no_interval() -> None:
    with pytest.raises(ValueError):
        wilson(0, 0)
    assert isinstance(wilson(1, 1), Interval)
