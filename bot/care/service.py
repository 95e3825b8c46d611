"""The care scheduler as a process: settings from the environment, logging, signals, and its
health endpoint (bot/health.py) when CAREBOT_SCHEDULER_HEALTH_PORT is set: ready while the CRM
database answers, whether or not this process leads (a standby is doing its job); `/ready`
says which (`"leader": true`), and `/metrics` has the outbox by state."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from bot import log_format, log_masking
from bot.care.leader import LEADERSHIP
from bot.care.scheduler import config_from_env, run
from bot.health import database_check, probe_engine, serve_health
from bot.metrics import register_outbox
from bot.settings import load_settings
from crm_store.db import session_scope
from crm_store.models import OUTBOX_STATES
from crm_store.outbox import count_by_campaign


def main() -> int:
    """Runs until SIGTERM or SIGINT; a second instance waits for the leader lock."""
    log_masking.install()
    log_format.configure()
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    settings = load_settings()
    config = config_from_env(
        settings.database_url,
        settings.rasa_url,
        settings.api_token,
        os.environ,
        settings.tracker_store_url,
    )
    health = serve_health(
        settings.health_host,
        settings.scheduler_health_port,
        {"database": database_check(settings.database_url)},
        lambda: {"leader": LEADERSHIP.leading},
    )
    register_outbox(outbox_counter(settings.database_url))
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        run(config, stop)
    finally:
        if health is not None:
            health.stop()
    return 0


def outbox_counter(database_url: str) -> Callable[[], dict[str, int]]:
    """The outbox's rows by state over every campaign, read from the CRM (metrics)."""
    engine = probe_engine(database_url)

    def count() -> dict[str, int]:
        with session_scope(engine) as session:
            by_campaign = count_by_campaign(session)
        totals = dict.fromkeys(OUTBOX_STATES, 0)
        for states in by_campaign.values():
            for state, rows in states.items():
                totals[state] = totals.get(state, 0) + rows
        return totals

    return count
