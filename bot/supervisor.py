"""`carebot run` keeps its children running: a child that exits is started again.

Each exit is a WARNING with its exit code and the delay before the restart, which doubles with
each crash of that child within the window (1 s, 2 s, 4 s, … at most 30 s). A child that
crashes `max_crashes` times within `window_s` is not restarted: the supervisor logs an ERROR
and gives up, and `carebot run` stops everything and exits 1, so a broken deployment fails
loudly instead of looping. In production systemd does the same per process
(deploy/systemd/: `Restart=on-failure`, `StartLimitBurst`, docs/deploy.md).

CAREBOT_SUPERVISOR_MAX_CRASHES (5) and CAREBOT_SUPERVISOR_WINDOW (600 seconds) set the policy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bot.runtime import Service

log = logging.getLogger("carebot.supervisor")


@dataclass(frozen=True)
class RestartPolicy:
    max_crashes: int = 5
    window_s: float = 600.0
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RestartPolicy:
        return cls(
            max_crashes=int(env.get("CAREBOT_SUPERVISOR_MAX_CRASHES", "5")),
            window_s=float(env.get("CAREBOT_SUPERVISOR_WINDOW", "600")),
        )

    def delay(self, crashes: int) -> float:
        """The wait before restarting a child that crashed `crashes` times in the window."""
        return min(self.first_delay_s * 2 ** max(crashes - 1, 0), self.max_delay_s)


class Supervised(Protocol):
    """What the supervisor needs of a stack (bot/runtime.py's `Stack`)."""

    services: list[Service]

    def restart(self, service: Service) -> None: ...


@dataclass
class Supervisor:
    stack: Supervised
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Callable[[], float] = time.monotonic
    _crashes: dict[str, deque[float]] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)  # child -> when it is restarted

    def watch(self, stop: threading.Event, poll_s: float = 0.5) -> int:
        """Until `stop` is set (0) or a child crashed too often (1)."""
        while not stop.wait(poll_s):
            if not self.check_once():
                return 1
        return 0

    def check_once(self) -> bool:
        """Restarts what is due and notes new exits; False once a child crashed too often."""
        now = self.clock()
        for service in self.stack.services:
            if service.name in self._due:
                if now >= self._due[service.name]:
                    del self._due[service.name]
                    log.warning("restarting %s", service.name)
                    self.stack.restart(service)
            elif not service.is_running() and not self._crashed(service, now):
                return False
        return True

    def _crashed(self, service: Service, now: float) -> bool:
        """Records an exit; schedules the restart (True) or gives up (False)."""
        code = service.process.returncode if service.process is not None else None
        crashes = self._crashes.setdefault(service.name, deque())
        crashes.append(now)
        while crashes and crashes[0] <= now - self.policy.window_s:
            crashes.popleft()
        if len(crashes) >= self.policy.max_crashes:
            log.error(
                "%s exited with code %s, its %d. exit in %.0f s: giving up, stopping everything",
                service.name,
                code,
                len(crashes),
                self.policy.window_s,
            )
            return False
        delay = self.policy.delay(len(crashes))
        log.warning(
            "%s exited with code %s; restarting it in %.0f s (exit %d of %d allowed in %.0f s)",
            service.name,
            code,
            delay,
            len(crashes),
            self.policy.max_crashes - 1,
            self.policy.window_s,
        )
        self._due[service.name] = now + delay
        return True
