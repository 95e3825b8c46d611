"""Operator settings, read from the environment once per process (no work at import time)."""

from __future__ import annotations

import os
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import time as clock_time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEMO_WECHAT_APP_ID = "wx_carebot_demo"  # the WeChat simulator's app when no real OA is set


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
    wechat_sim_port: int = 5006
    console_port: int = 5007
    # Each service binds its own address (docs/security.md): only the Rasa server faces
    # customers; the action server, console and simulator stay on loopback unless told.
    action_host: str = "127.0.0.1"
    console_host: str = "127.0.0.1"
    wechat_sim_host: str = "127.0.0.1"
    action_secret: str = ""  # only the Rasa server may call the action server
    rest_secret: str | None = None  # the REST channel is off without it
    allowed_origins: tuple[str, ...] = ()  # web pages that may use the web chat and the API
    demo: bool = False  # demo data, the demo web login, demo SMS codes in the log
    # Rasa's conversation store: a SQLite file under var/ (the embedded default) or any
    # SQLAlchemy URL, e.g. PostgreSQL shared by several Rasa replicas (docs/deploy.md).
    tracker_url: str = ""
    # RabbitMQ (amqp://user:password@host:port/vhost): Rasa publishes every event there and
    # `carebot log-consumer` writes the turns to the CRM; without it the Rasa server writes them.
    event_broker_url: str | None = None
    event_queue: str = "carebot_turns"
    event_exchange: str = "carebot-events"
    # With CAREBOT_TRACKER_URL set, the log consumer also reads the tracker store this often (s;
    # 0: never) and writes the turns RabbitMQ did not deliver (bot/reconcile.py); it reads
    # again what was stored in the last `consumer_reconcile_margin` seconds.
    consumer_reconcile_every: float = 10.0
    consumer_reconcile_margin: float = 60.0
    # Health, readiness and metrics of the processes without HTTP of their own (bot/health.py):
    # a process serves them only when its port is set (`carebot run` sets them, docs/deploy.md).
    health_host: str = "127.0.0.1"
    scheduler_health_port: int | None = None
    consumer_health_port: int | None = None
    rasa_metrics_port: int | None = None

    @property
    def console_url(self) -> str:
        return f"http://{_reachable(self.console_host)}:{self.console_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://{_reachable(self.host)}:{self.rasa_port}"

    @property
    def wechat_sim_url(self) -> str:
        return f"http://{_reachable(self.wechat_sim_host)}:{self.wechat_sim_port}"

    @property
    def action_url(self) -> str:
        return f"http://{_reachable(self.action_host)}:{self.action_port}/webhook"

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def tracker_db(self) -> Path:
        return self.var_dir / "rasa_tracker.db"

    @property
    def tracker_store_url(self) -> str:
        return self.tracker_url or f"sqlite:///{self.tracker_db}"


def _reachable(host: str) -> str:
    """The address a local client dials for a server bound to `host` (all interfaces: loopback)."""
    return "127.0.0.1" if host in {"0.0.0.0", "", "::"} else host


TRUE = frozenset({"1", "true", "yes", "on"})


def origins(text: str) -> tuple[str, ...]:
    """The allow-list of web origins from a comma-separated setting (no trailing slashes)."""
    return tuple(origin.strip().rstrip("/") for origin in text.split(",") if origin.strip())


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Builds the settings from `env` (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    var_dir = Path(env.get("CAREBOT_VAR_DIR", PROJECT_DIR / "var")).resolve()
    loopback = "127.0.0.1"
    return Settings(
        project_dir=PROJECT_DIR,
        var_dir=var_dir,
        host=env.get("CAREBOT_HOST", "127.0.0.1"),
        rasa_port=int(env.get("CAREBOT_RASA_PORT", "5005")),
        action_port=int(env.get("CAREBOT_ACTION_PORT", "5055")),
        database_url=env.get("CAREBOT_DATABASE_URL", f"sqlite:///{var_dir / 'crm.db'}"),
        redis_url=env.get("CAREBOT_REDIS_URL") or None,
        api_token=env.get("CAREBOT_API_TOKEN") or _stored_token(var_dir),
        wechat_sim_port=int(env.get("CAREBOT_WECHAT_SIM_PORT", "5006")),
        console_port=int(env.get("CAREBOT_CONSOLE_PORT", "5007")),
        action_host=env.get("CAREBOT_ACTION_HOST", loopback),
        console_host=env.get("CAREBOT_CONSOLE_HOST", loopback),
        wechat_sim_host=env.get("CAREBOT_WECHAT_SIM_HOST", loopback),
        action_secret=env.get("CAREBOT_ACTION_SECRET") or _stored_action_secret(var_dir),
        rest_secret=env.get("CAREBOT_REST_SECRET") or None,
        allowed_origins=origins(env.get("CAREBOT_ALLOWED_ORIGINS", "")),
        demo=env.get("CAREBOT_DEMO", "").strip().lower() in TRUE,
        tracker_url=env.get("CAREBOT_TRACKER_URL", ""),
        event_broker_url=env.get("CAREBOT_EVENT_BROKER_URL") or None,
        event_queue=env.get("CAREBOT_EVENT_QUEUE", "carebot_turns"),
        event_exchange=env.get("CAREBOT_EVENT_EXCHANGE", "carebot-events"),
        consumer_reconcile_every=float(env.get("CAREBOT_CONSUMER_RECONCILE_EVERY") or 10),
        consumer_reconcile_margin=float(env.get("CAREBOT_CONSUMER_RECONCILE_MARGIN") or 60),
        health_host=env.get("CAREBOT_HEALTH_HOST", loopback),
        scheduler_health_port=_port(env.get("CAREBOT_SCHEDULER_HEALTH_PORT")),
        consumer_health_port=_port(env.get("CAREBOT_CONSUMER_HEALTH_PORT")),
        rasa_metrics_port=_port(env.get("CAREBOT_RASA_METRICS_PORT")),
    )


def rasa_metrics_endpoint(env: Mapping[str, str]) -> tuple[str, int | None]:
    """Where a Rasa server process serves its metrics (read without the rest of the settings,
    which would create var/ secrets in a process that is handed its own)."""
    return env.get("CAREBOT_HEALTH_HOST", "127.0.0.1"), _port(env.get("CAREBOT_RASA_METRICS_PORT"))


def _port(text: str | None) -> int | None:
    """A port setting: unset or empty means none."""
    return int(text) if text and text.strip() else None


def scheduler_plan_at(env: Mapping[str, str]) -> clock_time:
    """When the care scheduler plans the day: CAREBOT_SCHEDULER_PLAN_AT, UTC HH:MM (00:05)."""
    hour, minute = (int(part) for part in env.get("CAREBOT_SCHEDULER_PLAN_AT", "00:05").split(":"))
    return clock_time(hour, minute)


def _stored_token(var_dir: Path) -> str:
    """A random HTTP API token, created on first use and kept so restarts keep the same one."""
    return _stored_secret(var_dir / "api_token", lambda: secrets.token_urlsafe(24))


def _stored_action_secret(var_dir: Path) -> str:
    """The secret the Rasa server shows the action server, created on first use and kept."""
    return _stored_secret(var_dir / "action_secret", lambda: secrets.token_urlsafe(32))


def demo_wechat_credentials(var_dir: Path) -> dict[str, str]:
    """The CAREBOT_WECHAT_* credentials the simulator and the bot share when no real OA is set.

    Random per installation and kept under var/, so a restart keeps them and none is committed.
    The EncodingAESKey switches the demo to safe mode, the mode a production OA should use.
    """
    return {
        "CAREBOT_WECHAT_APP_ID": DEMO_WECHAT_APP_ID,
        "CAREBOT_WECHAT_APP_SECRET": _stored_secret(
            var_dir / "wechat_sim_secret", lambda: secrets.token_hex(16)
        ),
        "CAREBOT_WECHAT_TOKEN": _stored_secret(
            var_dir / "wechat_sim_token", lambda: secrets.token_hex(16)
        ),
        "CAREBOT_WECHAT_AES_KEY": _stored_secret(var_dir / "wechat_sim_aes_key", _aes_key),
    }


def webchat_secret(var_dir: Path) -> str:
    """The key web chat login tokens are signed with: CAREBOT_WEBCHAT_SECRET, else kept in var/."""
    return os.environ.get("CAREBOT_WEBCHAT_SECRET") or _stored_secret(
        var_dir / "webchat_secret", lambda: secrets.token_urlsafe(32)
    )


def console_secret(var_dir: Path) -> str:
    """The key staff console cookies are signed with: CAREBOT_CONSOLE_SECRET, else kept in var/."""
    return os.environ.get("CAREBOT_CONSOLE_SECRET") or _stored_secret(
        var_dir / "console_secret", lambda: secrets.token_urlsafe(32)
    )


def _aes_key() -> str:
    """A random EncodingAESKey: 43 letters or digits."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))


def _stored_secret(path: Path, make: Callable[[], str]) -> str:
    """A secret created on first use and kept (owner-only) so restarts keep the same one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return _read_when_written(path)
        with os.fdopen(descriptor, "w") as file:
            file.write(make())
    return path.read_text().strip()


def _read_when_written(path: Path) -> str:
    for _ in range(50):
        text = path.read_text().strip()
        if text:
            return text
        time.sleep(0.02)
    raise RuntimeError(f"{path} stays empty")
