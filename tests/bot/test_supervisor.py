"""`carebot run` restarts a crashed child with backoff and gives up on one that keeps crashing
(bot/supervisor.py), on real child processes."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.runtime import Service, Stack
from bot.settings import load_settings
from bot.supervisor import RestartPolicy, Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
FAST = RestartPolicy(max_crashes=3, window_s=60, first_delay_s=0.2, max_delay_s=1)


def stack_of(tmp_path: Path, *services: Service) -> Stack:
    stack = Stack(load_settings({"CAREBOT_VAR_DIR": str(tmp_path)}), tmp_path / "model.tar.gz")
    for service in services:
        stack.services.append(service)
        service.start(tmp_path, None)
    return stack


def pid_of(service: Service) -> int:
    assert service.process is not None
    return service.process.pid


def until(condition: object, timeout_s: float = 20) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_child_comes_back_and_the_exit_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    killed, bystander = Service("scheduler", SLEEPER, "", {}), Service("console", SLEEPER, "", {})
    stack = stack_of(tmp_path, killed, bystander)
    supervisor = Supervisor(stack, FAST)
    first, other = pid_of(killed), pid_of(bystander)
    try:
        os.kill(first, signal.SIGKILL)
        assert until(lambda: not killed.is_running())
        with caplog.at_level(logging.WARNING, "carebot.supervisor"):
            assert until(lambda: supervisor.check_once() and pid_of(killed) != first)
        assert killed.is_running() and pid_of(bystander) == other
        warning = next(r for r in caplog.records if "exited" in r.getMessage())
        assert warning.levelno == logging.WARNING
        assert "scheduler exited with code -9" in warning.getMessage()
    finally:
        stack.stop()


def test_a_child_that_keeps_crashing_stops_everything_with_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    crashing = Service("log-consumer", [sys.executable, "-c", "raise SystemExit(3)"], "", {})
    bystander = Service("console", SLEEPER, "", {})
    stack = stack_of(tmp_path, crashing, bystander)
    stop = threading.Event()
    timer = threading.Timer(60, stop.set)  # a broken supervisor must not hang the test
    timer.start()
    started = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING, "carebot.supervisor"):
            assert Supervisor(stack, FAST).watch(stop, poll_s=0.05) == 1
    finally:
        timer.cancel()
        stack.stop()
    assert not stop.is_set() and time.monotonic() - started < 30
    levels = [(r.levelno, r.getMessage()) for r in caplog.records if "exited" in r.getMessage()]
    assert [level for level, _ in levels] == [logging.WARNING] * 2 + [logging.ERROR]
    assert all("log-consumer exited with code 3" in text for _, text in levels)
    assert "giving up" in levels[-1][1]
    assert not bystander.is_running()  # stack.stop() ended everything


def test_backoff_doubles_up_to_its_ceiling() -> None:
    policy = RestartPolicy(first_delay_s=1, max_delay_s=30)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5, 6, 7)] == [1, 2, 4, 8, 16, 30, 30]


def test_crashes_outside_the_window_are_forgotten(tmp_path: Path) -> None:
    now = [0.0]
    crashing = Service("scheduler", [sys.executable, "-c", "pass"], "", {})
    stack = stack_of(tmp_path, crashing)
    policy = RestartPolicy(max_crashes=2, window_s=10, first_delay_s=0, max_delay_s=0)
    supervisor = Supervisor(stack, policy, clock=lambda: now[0])
    try:
        for moment in (0.0, 11.0, 22.0):  # one exit every 11 s: never two in 10 s
            now[0] = moment
            assert until(lambda: not crashing.is_running())
            assert supervisor.check_once()  # noted, restart due at once
            assert supervisor.check_once()  # restarted
        assert until(lambda: not crashing.is_running())
        now[0] = 25.0
        assert not supervisor.check_once()  # the second exit within 10 s
    finally:
        stack.stop()
