"""`carebot serve PART`: one process of the system in the foreground, for a process manager
(systemd units in deploy/systemd/, docs/deploy.md) on whichever host runs that part.

It builds the process exactly as `carebot run` does (bot/runtime.py: the same command, the same
environment, the endpoints and credentials files for Rasa) and replaces itself with it, so the
manager signals and watches the real process, not a wrapper.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

from bot.runtime import (
    Service,
    action_server,
    care_scheduler,
    log_consumer,
    rasa_server,
    staff_console,
    write_runtime_config,
)
from bot.settings import Settings

PARTS = ("rasa", "actions", "scheduler", "console", "log-consumer")


def service_for(part: str, settings: Settings, model: Path | None = None) -> Service:
    """The process `carebot run` would start for `part` (Rasa needs its model)."""
    if part == "rasa":
        if model is None:
            raise ValueError("the Rasa server needs a model")
        endpoints, credentials = write_runtime_config(settings)
        return rasa_server(settings, model, endpoints, credentials)
    if part == "actions":
        return action_server(settings)
    if part == "scheduler":
        return care_scheduler(settings)
    if part == "console":
        return staff_console(settings)
    if part == "log-consumer":
        return log_consumer(settings)
    raise ValueError(f"no part {part!r}: one of {', '.join(PARTS)}")


def exec_service(service: Service, cwd: Path) -> NoReturn:
    """Replaces this process with the service's."""
    os.chdir(cwd)
    os.execve(service.command[0], service.command, service.env)
