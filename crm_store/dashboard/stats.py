"""The uplift of a win-back campaign with its 95% confidence interval, as pure functions.

Newcombe's hybrid score interval for a difference of two proportions (Newcombe 1998, method 10),
built from each arm's Wilson score interval. Unlike the textbook Wald interval it stays inside
[-1, 1] and does not collapse to zero width when an arm's rate is 0 or 1: what a campaign's
first weeks, with a few dozen customers per arm, look like.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class Uplift:
    treated_rate: float | None  # None: no measured customer in that arm yet
    control_rate: float | None
    difference: float | None  # treated minus control
    low: float | None  # the 95% interval of the difference
    high: float | None


def _check(successes: int, trials: int) -> None:
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"{successes} of {trials} is not a proportion")


def wilson(successes: int, trials: int, z: float = Z_95) -> Interval:
    """Wilson's score interval of one proportion (trials > 0)."""
    _check(successes, trials)
    if trials == 0:
        raise ValueError("a proportion of no trials has no interval")
    p, n = successes / trials, trials
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def uplift(
    treated_returned: int, treated: int, control_returned: int, control: int, z: float = Z_95
) -> Uplift:
    """Reactivation rates of both arms, their difference and its interval (needs both arms)."""
    _check(treated_returned, treated)
    _check(control_returned, control)
    treated_rate = treated_returned / treated if treated else None
    control_rate = control_returned / control if control else None
    if treated_rate is None or control_rate is None:
        return Uplift(treated_rate, control_rate, None, None, None)
    t, c = wilson(treated_returned, treated, z), wilson(control_returned, control, z)
    difference = treated_rate - control_rate
    below = math.sqrt((treated_rate - t.low) ** 2 + (c.high - control_rate) ** 2)
    above = math.sqrt((t.high - treated_rate) ** 2 + (control_rate - c.low) ** 2)
    return Uplift(treated_rate, control_rate, difference, difference - below, difference + above)
