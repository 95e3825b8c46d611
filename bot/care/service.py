"""The care scheduler as a process: settings from the environment, logging, signals."""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

from bot import log_format, log_masking
from bot.care.scheduler import config_from_env, run
from bot.settings import load_settings


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
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    run(config, stop)
    return 0
