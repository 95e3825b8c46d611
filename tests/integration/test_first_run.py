"""The first minutes of `make run` (issue 16): a fresh `carebot run --demo`, its care scheduler
planning at start-up as it does for a newcomer (not the shared system, which plans nothing), logs
no ERROR line in its first 100 seconds and fails no proactive message. The demo's campaigns are
on, within their daily caps; its WeChat followers are followers in the simulator, so the
messages routed to them arrive there as template messages.

So that sending happens whatever the time of day (at night in Shanghai the start-up plan is due
in the morning), the test also drives the scheduler through the next day at once, as an operator
would (`carebot campaigns run-once --date`); that day's plan and dispatch go through the same
Rasa, care action, WeChat channel and simulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.settings import PROJECT_DIR
from crm_store.campaigns.rules import BUSINESS_TZ
from crm_store.clock import utcnow
from crm_store.db import make_engine, session_scope
from crm_store.demo import DEMO_DAILY_CAPS
from crm_store.models import Campaign, CareMessage
from tests.conftest import running_system
from tests.integration.system import TOKEN, System
from tests.integration.test_wechat_sim import sim_call

pytestmark = pytest.mark.integration

FIRST_MINUTES_S = 100
DEMO_CUSTOMERS = 2_000
ERROR_LINE = re.compile(r"\bERROR\b|Traceback")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[System, float]]:
    """`carebot run --demo` on an empty var/ with the scheduler's defaults; when it started."""
    var_dir = tmp_path_factory.mktemp("first-run")
    started = time.monotonic()
    for running in running_system(var_dir, {}, demo=True, redis_url=None):
        yield running, started


def run_once(system: System, day: date) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        CAREBOT_VAR_DIR=str(system.var_dir),
        CAREBOT_RASA_PORT=system.rasa_url.rsplit(":", 1)[1],
        CAREBOT_API_TOKEN=TOKEN,
        RASA_TELEMETRY_ENABLED="false",
    )
    env.pop("CAREBOT_DATABASE_URL", None)
    command = [sys.executable, "-m", "bot.cli", "campaigns", "run-once", "--date", day.isoformat()]
    return subprocess.run(
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600
    )


def outbox(var_dir: Path) -> list[tuple[str, str, int, str | None, date]]:
    """(campaign, state, customer, reason, the shop's day it was planned) of every row."""
    engine = make_engine(f"sqlite:///{var_dir / 'crm.db'}")
    try:
        with session_scope(engine) as session:
            rows = session.execute(
                select(
                    Campaign.key,
                    CareMessage.state,
                    CareMessage.customer_id,
                    CareMessage.reason,
                    CareMessage.created_at,
                ).join(Campaign, Campaign.id == CareMessage.campaign_id)
            ).all()
            assert session.scalar(select(func.count()).select_from(Campaign)) == 7
    finally:
        engine.dispose()
    return [(k, s, c, r, at.astimezone(BUSINESS_TZ).date()) for k, s, c, r, at in rows]


def wait_for_the_start_up_plan(system: System, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while "planned win_back for" not in system.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the scheduler did not plan at start-up"
        time.sleep(1)


def test_the_first_minutes_log_no_error_and_fail_no_proactive_message(
    fresh: tuple[System, float],
) -> None:
    system, started = fresh
    wait_for_the_start_up_plan(system)
    tomorrow = utcnow().astimezone(BUSINESS_TZ).date() + timedelta(days=1)
    done = run_once(system, tomorrow)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"dispatched: \d+ sent, 0 failed", done.stdout), done.stdout
    time.sleep(max(0.0, FIRST_MINUTES_S - (time.monotonic() - started)) + 12)  # a dispatch round

    rows = outbox(system.var_dir)
    assert [row for row in rows if row[1] == "failed"] == []
    sent = [row for row in rows if row[1] == "sent"]
    assert sent, "nothing was sent: the test did not exercise the first run"
    waiting = {row[3] for row in rows if row[1] == "pending"}
    assert waiting <= {None, "unreachable", "quiet_hours"}  # web customers without a socket
    # every campaign within its daily cap, each day; a small share of the demo contacted
    for day in {row[4] for row in rows}:
        for key, cap in DEMO_DAILY_CAPS.items():
            assert sum(1 for row in rows if row[0] == key and row[4] == day) <= (cap or 0), key
    assert len({row[2] for row in rows}) <= DEMO_CUSTOMERS * 2 * 5 // 100

    records = sim_call(system, "GET", "/sim/api/log")
    delivered = [r for r in records if r["sender"] == "bot" and r["errcode"] == 0]
    assert any(r["kind"] == "template" for r in delivered), records[-5:]
    assert not [r for r in records if r["errcode"] == 40003]

    lines = system.log.read_text(errors="replace").splitlines()
    assert [line for line in lines if ERROR_LINE.search(line)] == []
