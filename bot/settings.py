"""Operator settings, read from the environment once per process (no work at import time)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Where the running system keeps its state and which loopback ports it listens on."""

    project_dir: Path
    var_dir: Path
    host: str
    rasa_port: int
    action_port: int
    database_url: str
    redis_url: str | None
    api_token: str

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://{self.host}:{self.action_port}/webhook"

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def tracker_db(self) -> Path:
        return self.var_dir / "rasa_tracker.db"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Builds the settings from `env` (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    var_dir = Path(env.get("CAREBOT_VAR_DIR", PROJECT_DIR / "var")).resolve()
    return Settings(
        project_dir=PROJECT_DIR,
        var_dir=var_dir,
        host=env.get("CAREBOT_HOST", "127.0.0.1"),
        rasa_port=int(env.get("CAREBOT_RASA_PORT", "5005")),
        action_port=int(env.get("CAREBOT_ACTION_PORT", "5055")),
        database_url=env.get("CAREBOT_DATABASE_URL", f"sqlite:///{var_dir / 'crm.db'}"),
        redis_url=env.get("CAREBOT_REDIS_URL") or None,
        api_token=env.get("CAREBOT_API_TOKEN") or _stored_token(var_dir),
    )


def _stored_token(var_dir: Path) -> str:
    """A random HTTP API token, created on first use and kept so restarts keep the same one."""
    path = var_dir / "api_token"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()
