"""The console's settings: where the CRM and Rasa are, the cookie key, the wait timeout."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path

from bot.settings import PROJECT_DIR, Settings, console_secret, scheduler_plan_at

DEFAULT_WAIT_MINUTES = 5.0


@dataclass(frozen=True)
class ConsoleConfig:
    database_url: str
    rasa_url: str
    api_token: str
    secret: str
    # Nobody has claimed a waiting handoff after this long: the customer is told and may choose
    # to keep waiting, leave a message, or go back to the bot (CAREBOT_HANDOFF_WAIT_MINUTES).
    handoff_wait: timedelta = timedelta(minutes=DEFAULT_WAIT_MINUTES)
    timeout_check_s: float = 5.0
    session_hours: float = 12.0
    secure_cookies: bool = False  # set behind HTTPS (CAREBOT_CONSOLE_SECURE_COOKIES=1)
    domain_path: Path = PROJECT_DIR / "domain.yml"
    # When the care scheduler plans the day (UTC, CAREBOT_SCHEDULER_PLAN_AT): the campaigns
    # page previews the next such run.
    plan_at: time = time(0, 5)


def console_config(settings: Settings, env: Mapping[str, str] | None = None) -> ConsoleConfig:
    env = os.environ if env is None else env
    minutes = float(env.get("CAREBOT_HANDOFF_WAIT_MINUTES") or DEFAULT_WAIT_MINUTES)
    return ConsoleConfig(
        database_url=settings.database_url,
        rasa_url=settings.rasa_url,
        api_token=settings.api_token,
        secret=console_secret(settings.var_dir),
        handoff_wait=timedelta(minutes=minutes),
        secure_cookies=env.get("CAREBOT_CONSOLE_SECURE_COOKIES", "") in {"1", "true", "yes"},
        plan_at=scheduler_plan_at(env),
    )
