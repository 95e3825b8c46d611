"""The win-back uplift on the `carebot campaigns status` line.

The statistics are the dashboard's (`crm_store.dashboard.stats`: Newcombe's hybrid score interval),
so the command line and the manager dashboard show the same interval to the last digit.
"""

from __future__ import annotations

from crm_store.dashboard.stats import Uplift, uplift

__all__ = ["Uplift", "describe", "uplift"]


def describe(result: Uplift) -> str:
    """One line for `carebot campaigns status`."""
    if result.difference is None or result.low is None or result.high is None:
        return "uplift: not measurable yet (an arm has no measured customer)"
    return (
        f"reactivation treated {result.treated_rate:.1%} vs control {result.control_rate:.1%}: "
        f"uplift {result.difference * 100:+.1f} pts (95% CI {result.low * 100:+.1f} .. "
        f"{result.high * 100:+.1f})"
    )
