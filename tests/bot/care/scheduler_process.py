"""Start `python -m bot.care` (the scheduler process) against a database and a stub Rasa."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from bot.settings import PROJECT_DIR

FAST = {
    "CAREBOT_SCHEDULER_AUTOPLAN": "0",
    "CAREBOT_SCHEDULER_DISPATCH_EVERY": "0.2",
    "CAREBOT_SCHEDULER_RECLAIM_EVERY": "0.5",
    "CAREBOT_SCHEDULER_STALE_AFTER": "1",
    "CAREBOT_SCHEDULER_LOCK_POLL": "0.2",
    "CAREBOT_SCHEDULER_RATE": "100",
    # one worker: its first claim takes every due row, which the crash tests count on
    # (several workers are tested in tests/bot/care/test_concurrent_dispatch.py)
    "CAREBOT_DISPATCH_WORKERS": "1",
}


def start_scheduler(
    database_url: str, rasa_url: str, log: Path, **extra: str
) -> subprocess.Popen[bytes]:
    rasa = urllib.parse.urlparse(rasa_url)
    env = {
        **os.environ,
        **FAST,
        "CAREBOT_VAR_DIR": str(log.parent),
        "CAREBOT_DATABASE_URL": database_url,
        "CAREBOT_HOST": rasa.hostname or "127.0.0.1",
        "CAREBOT_RASA_PORT": str(rasa.port),
        "CAREBOT_API_TOKEN": "scheduler-test",
        "RASA_TELEMETRY_ENABLED": "false",
        **extra,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bot.care"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_until(condition: Callable[[], bool], timeout_s: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
