"""The options of the dashboard's figures beyond the filter, shared by `carebot report <figure>`
(bot/report_cli.py, as command-line flags) and the staff console's dashboard (as query
parameters), so both ask for the same figure the same way."""

from __future__ import annotations

from typing import Any

# Per figure: (flag, keyword of the query function, argparse kwargs).
OPTIONS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "survey-trend": [("--period", "period", {"choices": ("week", "month"), "default": "week"})],
    "survey-breakdown": [
        (
            "--by",
            "by",
            {"choices": ("channel", "tier", "segment", "stage", "churn_band", "agent")},
        )
    ],
    "comments": [
        ("--text", "text", {"help": "only comments containing this text"}),
        ("--theme", "theme", {"help": "only comments with this theme"}),
        ("--polarity", "polarity", {"choices": ("positive", "negative", "neutral")}),
        ("--page", "page", {"type": int, "default": 1}),
        ("--page-size", "page_size", {"type": int, "default": 20}),
    ],
    "themes": [("--limit", "limit", {"type": int, "default": 10})],
    "follow-ups": [("--limit", "limit", {"type": int, "default": 100})],
    "misunderstood": [("--limit", "limit", {"type": int, "default": 20})],
}
NEEDS_TZ = ("survey-trend",)  # figures that cut days into weeks or months in a time zone
