"""The business time zone: one setting (CAREBOT_BUSINESS_TZ) read once by crm_store.clock, and
every part of the system that cuts days reads it from there."""

from __future__ import annotations

import os
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from crm_store.clock import business_zone

PROBE = """
import inspect
from datetime import datetime, timezone
from actions.rules.handoff import parse_staffed_hours
from crm_store.campaigns.rules import local_date
from crm_store.clock import BUSINESS_TZ
from crm_store.customers import create_customer
from crm_store.dashboard import day_window
late_evening_utc = datetime(2026, 11, 20, 20, 0, tzinfo=timezone.utc)
print(BUSINESS_TZ.key)
print(local_date(late_evening_utc))
print(inspect.signature(create_customer).parameters["timezone"].default)
print(inspect.signature(day_window).parameters["tz"].default)
print(parse_staffed_hours("09:00-18:00").zone.key)
"""


def test_unset_or_empty_is_shanghai_and_a_zone_name_is_that_zone() -> None:
    assert business_zone({}) == ZoneInfo("Asia/Shanghai")
    assert business_zone({"CAREBOT_BUSINESS_TZ": ""}) == ZoneInfo("Asia/Shanghai")
    assert business_zone({"CAREBOT_BUSINESS_TZ": "Europe/Berlin"}) == ZoneInfo("Europe/Berlin")
    with pytest.raises(ValueError, match="CAREBOT_BUSINESS_TZ='Mars/Olympus' is not a time zone"):
        business_zone({"CAREBOT_BUSINESS_TZ": "Mars/Olympus"})


def probe(zone: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "CAREBOT_BUSINESS_TZ"}
    if zone is not None:
        env["CAREBOT_BUSINESS_TZ"] = zone
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_the_one_setting_reaches_campaign_dates_customers_reports_and_staffed_hours() -> None:
    # 20:00 UTC on 20 November is already the 21st in Shanghai, still the 20th in Berlin
    assert probe(None) == ["Asia/Shanghai", "2026-11-21", *["Asia/Shanghai"] * 3]
    assert probe("Europe/Berlin") == ["Europe/Berlin", "2026-11-20", *["Europe/Berlin"] * 3]
