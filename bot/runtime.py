"""Starts and stops the system's processes: the Rasa server, the action server, the care
scheduler and, without a real WeChat Official Account, the WeChat simulator.

`make run`, `make shell` and the integration tests all go through this module, so what the tests
start is exactly what an operator runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

import yaml
from sqlalchemy.engine import make_url

from bot.settings import Settings, demo_wechat_credentials, webchat_secret
from bot.training import rasa_env

READY_TIMEOUT_S = 240.0
INTERACTION_LOG = "bot.interaction_log.CrmInteractionLog"
# Health, readiness and metrics ports of the processes without HTTP of their own (bot/health.py),
# unless CAREBOT_SCHEDULER_HEALTH_PORT, CAREBOT_CONSUMER_HEALTH_PORT, CAREBOT_RASA_METRICS_PORT
SCHEDULER_HEALTH_PORT = 5008
CONSUMER_HEALTH_PORT = 5009
RASA_METRICS_PORT = 5010
PIKA_BROKER = "bot.event_broker.CarePikaEventBroker"  # Rasa's pika broker that keeps retrying


@dataclass
class Service:
    """One child process with a URL that answers once it is ready."""

    name: str
    command: list[str]
    health_url: str
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, cwd: Path, log_path: Path | None) -> None:
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=cwd,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log else None,
            start_new_session=True,  # its own process group, so stop() reaches its children
        )

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace_s: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.log is not None:
            self.log.close()
            self.log = None


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def write_runtime_config(
    settings: Settings, env: Mapping[str, str] | None = None
) -> tuple[Path, Path]:
    """Writes the endpoints and credentials files Rasa reads, from the settings and `env`."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    endpoints = settings.run_dir / "endpoints.yml"
    credentials = settings.run_dir / "credentials.yml"
    _write_private(endpoints, endpoints_config(settings))  # the database URL may carry a password
    _write_private(credentials, credentials_config(settings, env))
    return endpoints, credentials


def _write_private(path: Path, config: dict[str, Any]) -> None:
    """Writes a YAML file that only this user can read (created so, never widened later)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(yaml.safe_dump(config, allow_unicode=True))


def endpoints_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        # only the Rasa server holds the action server's secret (bot/action_server.py)
        "action_endpoint": {
            "url": settings.action_url,
            "headers": {"Authorization": "Bearer ${CAREBOT_ACTION_SECRET}"},
            # no 44 KB domain in every action call: the actions read it (actions/base.py)
            "enable_selective_domain": True,
        },
        "tracker_store": tracker_store_endpoint(settings.tracker_store_url),
        "event_broker": event_broker_endpoint(settings),
    }
    if settings.redis_url:
        config["lock_store"] = {"type": "redis", **_redis_endpoint(settings.redis_url)}
    return config


def tracker_store_endpoint(url: str) -> dict[str, Any]:
    """Rasa's SQL tracker store keyword arguments for a SQLAlchemy URL."""
    parsed = make_url(url)
    endpoint: dict[str, Any] = {
        "type": "bot.tracker_store.CareSQLTrackerStore",
        "dialect": parsed.get_backend_name(),
        "db": parsed.database or "",
    }
    if parsed.host:
        endpoint["url"] = parsed.host
    if parsed.port:
        endpoint["port"] = parsed.port
    if parsed.username:
        endpoint["username"] = parsed.username
    if parsed.password:
        endpoint["password"] = str(parsed.password)
    return endpoint


def event_broker_endpoint(settings: Settings) -> dict[str, Any]:
    """Every customer and bot turn goes to the CRM's interactions: written by the Rasa server
    itself (bot/interaction_log.py, the embedded default), or published to RabbitMQ through
    Rasa's pika broker (bot/event_broker.py) for `carebot log-consumer` (bot/log_consumer.py)."""
    if not settings.event_broker_url:
        return {"type": INTERACTION_LOG, "url": settings.database_url}
    amqp = urlparse(settings.event_broker_url)
    return {
        "type": PIKA_BROKER,
        "url": amqp.hostname or "127.0.0.1",
        "port": amqp.port or 5672,
        "username": unquote(amqp.username or "guest"),
        "password": unquote(amqp.password or "guest"),
        "queues": [settings.event_queue],
        "exchange_name": settings.event_exchange,
    }


def _redis_endpoint(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    return {
        "url": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 6379,
        "db": int(parsed.path.lstrip("/") or 0),
        "key_prefix": "carebot",
    }


def credentials_config(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The channels: the web chat always, REST with its secret only, WeChat when configured."""
    env = os.environ if env is None else env
    config: dict[str, Any] = {WEBCHAT_CHANNEL: webchat_credentials(settings, env)}
    if settings.rest_secret:
        config[REST_CHANNEL] = {"secret": "${CAREBOT_REST_SECRET}"}
    wechat = wechat_credentials(env)
    if wechat is not None:
        config[WECHAT_CHANNEL] = wechat
    return config


REST_CHANNEL = "bot.channels.rest.CareRestInput"
WEBCHAT_CHANNEL = "bot.channels.webchat.channel.WebChatInput"
DEMO_WEB_USERS = ["demo", "demo_lunar"]  # web_user identities of the demo customers


def webchat_credentials(settings: Settings, env: Mapping[str, str]) -> dict[str, Any]:
    """The web chat's section (docs/webchat.md); secrets are `${VAR}` references.

    The demo login exists only in demo mode (`carebot run --demo`, what `make run` does), unless
    CAREBOT_WEBCHAT_DEMO_LOGIN=0 turns it off there too. A real website signs its own tokens with
    CAREBOT_WEBCHAT_SECRET. Browsers may connect from the same origin and from the allow-list.
    """
    demo_login = settings.demo and env.get("CAREBOT_WEBCHAT_DEMO_LOGIN", "1") not in {
        "0",
        "false",
        "no",
    }
    section: dict[str, Any] = {
        "database_url": "${CAREBOT_DATABASE_URL}",
        "secret": "${CAREBOT_WEBCHAT_SECRET}",
        "demo_login": demo_login,
        "demo_users": DEMO_WEB_USERS,
        "allowed_origins": list(settings.allowed_origins),
    }
    if env.get("CAREBOT_REDIS_URL"):
        section["redis_url"] = "${CAREBOT_REDIS_URL}"
    return section


WECHAT_CHANNEL = "bot.channels.wechat.channel.WeChatInput"
WECHAT_API = "https://api.weixin.qq.com"


def wechat_credentials(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The WeChat channel's section when CAREBOT_WECHAT_APP_ID is set (docs/wechat.md).

    Secrets stay `${VAR}` references that Rasa expands from its own environment, so none is
    written to the credentials file.
    """
    if not env.get("CAREBOT_WECHAT_APP_ID"):
        return None
    keys = ["app_id", "app_secret", "token"] + (
        ["aes_key"] if env.get("CAREBOT_WECHAT_AES_KEY") else []
    )
    section: dict[str, Any] = {key: f"${{CAREBOT_WECHAT_{key.upper()}}}" for key in keys}
    section["api_base_url"] = env.get("CAREBOT_WECHAT_API_BASE_URL") or WECHAT_API
    section["menu"] = json.loads(env.get("CAREBOT_WECHAT_MENU") or "{}")
    section["database_url"] = "${CAREBOT_DATABASE_URL}"  # rasa_server() sets it
    references = {"link_secret": "CAREBOT_WECHAT_LINK_SECRET", "redis_url": "CAREBOT_REDIS_URL"}
    section |= {key: f"${{{name}}}" for key, name in references.items() if env.get(name)}
    plain = ("template_id", "template_field", "template_field_limit", "template_url")
    names = {key: f"CAREBOT_WECHAT_{key.upper()}" for key in (*plain, "replay_window")}
    names["allow_plain_mode"] = "CAREBOT_WECHAT_ALLOW_PLAIN_MODE"
    names["forget_on_unfollow"] = "CAREBOT_WECHAT_FORGET_ON_UNFOLLOW"
    section |= {key: env[name] for key, name in names.items() if env.get(name)}
    return section


def action_server(settings: Settings, extra_env: dict[str, str] | None = None) -> Service:
    return Service(
        name="action-server",
        command=[sys.executable, "-m", "bot.action_server", "--port", str(settings.action_port)],
        health_url=settings.action_url.removesuffix("/webhook") + "/health",
        env=rasa_env(
            {
                "SANIC_HOST": settings.action_host,
                "CAREBOT_ACTION_SECRET": settings.action_secret,
                "CAREBOT_DEMO": "1" if settings.demo else "0",
                "CAREBOT_DATABASE_URL": settings.database_url,
                # load the feedback analysis before serving, not during a customer's turn
                "CAREBOT_WARM_UP": "1",
                **(extra_env or {}),
            }
        ),
    )


def rasa_server(
    settings: Settings,
    model: Path,
    endpoints: Path,
    credentials: Path,
    extra_env: dict[str, str] | None = None,
) -> Service:
    return Service(
        name="rasa",
        # the API token reaches Rasa through the environment, never the command line
        command=[sys.executable, "-m", "bot.rasa_main", "run", "--model", str(model)]
        + ["--endpoints", str(endpoints), "--credentials", str(credentials)]
        + ["--interface", settings.host, "--port", str(settings.rasa_port), "--enable-api"]
        + cors_arguments(settings),
        health_url=f"{settings.rasa_url}/",
        # the WeChat channel links and unlinks followers in the CRM (docs/wechat.md)
        env=rasa_env(
            {
                **rasa_secrets(settings),
                **REQUEST_LIMITS,
                **health_env(settings, "CAREBOT_RASA_METRICS_PORT", rasa_metrics_port(settings)),
                **(extra_env or {}),
            }
        ),
    )


def rasa_metrics_port(settings: Settings) -> int:
    return settings.rasa_metrics_port or RASA_METRICS_PORT


def scheduler_health_port(settings: Settings) -> int:
    return settings.scheduler_health_port or SCHEDULER_HEALTH_PORT


def consumer_health_port(settings: Settings) -> int:
    return settings.consumer_health_port or CONSUMER_HEALTH_PORT


def health_env(settings: Settings, variable: str, port: int) -> dict[str, str]:
    """The settings of a process's health endpoint (bot/health.py)."""
    return {"CAREBOT_HEALTH_HOST": settings.health_host, variable: str(port)}


def ready_url(settings: Settings, port: int) -> str:
    """The readiness URL of a health endpoint on `port` (bot/health.py)."""
    host = "127.0.0.1" if settings.health_host in {"0.0.0.0", "", "::"} else settings.health_host
    return f"http://{host}:{port}/ready"


# No webhook or API call of ours needs more than this; Sanic's default is 100 MB.
REQUEST_LIMITS = {"SANIC_REQUEST_MAX_SIZE": str(1024 * 1024)}


def rasa_secrets(settings: Settings) -> dict[str, str]:
    """What a Rasa server process reads from its environment: the CRM, the API token, and the
    secrets that credentials.yml and endpoints.yml name as `${VAR}`."""
    env = {
        "CAREBOT_DATABASE_URL": settings.database_url,
        "CAREBOT_API_TOKEN": settings.api_token,
        "CAREBOT_ACTION_SECRET": settings.action_secret,
        "CAREBOT_WEBCHAT_SECRET": webchat_secret(settings.var_dir),
    }
    if settings.rest_secret:
        env["CAREBOT_REST_SECRET"] = settings.rest_secret
    return env


def cors_arguments(settings: Settings) -> list[str]:
    """Rasa answers cross-origin requests only from the allow-list (none: same origin only)."""
    return ["--cors", *settings.allowed_origins] if settings.allowed_origins else []


WECHAT_SIM_DEFAULTS = {
    "CAREBOT_WECHAT_MENU": json.dumps({"ORDER": "/order_status", "POINTS": "/points_balance"}),
    "CAREBOT_WECHAT_TEMPLATE_ID": "TM_CAREBOT_NOTICE",  # a template the simulator knows
}


def runs_wechat_simulator(env: Mapping[str, str]) -> bool:
    """The simulator stands in for WeChat unless a real Official Account is configured."""
    return not env.get("CAREBOT_WECHAT_APP_ID")


def wechat_simulator_env(settings: Settings) -> dict[str, str]:
    """The CAREBOT_WECHAT_* settings the bot and the simulator share (docs/wechat_simulator.md).

    Demo credentials kept under var/ (safe mode), the simulator as the API host, and a menu
    and a template id the simulator knows, unless the environment sets its own.
    """
    defaults = {name: os.environ.get(name) or value for name, value in WECHAT_SIM_DEFAULTS.items()}
    return {
        **demo_wechat_credentials(settings.var_dir),
        "CAREBOT_WECHAT_API_BASE_URL": settings.wechat_sim_url,
        **defaults,
    }


def wechat_simulator(settings: Settings, followers: Path | None = None) -> Service:
    """`carebot wechat-sim`, pushing to this system's Rasa server with the shared settings;
    `followers` is the file of openids that follow the account from the start."""
    env = {
        **os.environ,
        **wechat_simulator_env(settings),
        "CAREBOT_WECHAT_SIM_HOST": settings.wechat_sim_host,
        "CAREBOT_WECHAT_SIM_PORT": str(settings.wechat_sim_port),
        "CAREBOT_WECHAT_SIM_WEBHOOK": f"{settings.rasa_url}/webhooks/wechat/webhook",
    }
    if followers is not None:
        env["CAREBOT_WECHAT_SIM_FOLLOWERS"] = str(followers)
    return Service(
        name="wechat-sim",
        command=[sys.executable, "-m", "bot.cli", "wechat-sim"],
        health_url=f"{settings.wechat_sim_url}/sim/api/health",
        env=env,
    )


WECHAT_FOLLOWERS = "wechat_followers.txt"


def write_wechat_followers(settings: Settings) -> Path:
    """The CRM's WeChat followers (its linked openids), one a line, for the simulator that stands
    in for WeChat: the real one knows who follows the account, so the simulator must too, or
    every proactive message to a follower would meet 40003 (invalid openid)."""
    from crm_store.db import make_engine, session_scope
    from crm_store.identities import list_wechat_followers

    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as session:
            openids = list_wechat_followers(session)
    finally:
        engine.dispose()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    path = settings.run_dir / WECHAT_FOLLOWERS
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.writelines(f"{openid}\n" for openid in openids)
    return path


def staff_console(settings: Settings) -> Service:
    """`carebot console`: the staff console on this system's CRM and Rasa (docs/handoff.md)."""
    env = {
        **os.environ,
        "CAREBOT_VAR_DIR": str(settings.var_dir),
        "CAREBOT_HOST": settings.host,
        "CAREBOT_RASA_PORT": str(settings.rasa_port),
        "CAREBOT_CONSOLE_HOST": settings.console_host,
        "CAREBOT_CONSOLE_PORT": str(settings.console_port),
        "CAREBOT_DATABASE_URL": settings.database_url,
        "CAREBOT_API_TOKEN": settings.api_token,
    }
    return Service(
        name="console",
        command=[sys.executable, "-m", "bot.cli", "console"],
        health_url=f"{settings.console_url}/health",
        env=env,
    )


def wait_until_ready(service: Service, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Polls the service's health URL; raises if it dies or does not answer in time.

    A service without a health URL is ready once started.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not service.is_running():
            raise RuntimeError(f"{service.name} exited before it was ready")
        if not service.health_url or _answers(service.health_url):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{service.name} did not answer {service.health_url} in {timeout_s:.0f} s")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def care_scheduler(settings: Settings, extra_env: Mapping[str, str] | None = None) -> Service:
    """`python -m bot.care` (docs/care_scheduler.md): it triggers proactive messages through
    this system's Rasa HTTP API; CAREBOT_SCHEDULER_* settings pass through from the environment.
    Ready once its health endpoint says the CRM answers (leader or standby)."""
    port = scheduler_health_port(settings)
    return Service(
        name="scheduler",
        command=[sys.executable, "-m", "bot.care"],
        health_url=ready_url(settings, port),
        env=rasa_env(
            {
                "CAREBOT_DATABASE_URL": settings.database_url,
                "CAREBOT_HOST": settings.host,
                "CAREBOT_RASA_PORT": str(settings.rasa_port),
                "CAREBOT_API_TOKEN": settings.api_token,
                "CAREBOT_VAR_DIR": str(settings.var_dir),
                **health_env(settings, "CAREBOT_SCHEDULER_HEALTH_PORT", port),
                **(extra_env or {}),
            }
        ),
    )


def log_consumer(settings: Settings) -> Service:
    """`carebot log-consumer` (bot/log_consumer.py), when Rasa publishes to RabbitMQ; ready once
    the CRM answers and RabbitMQ is connected."""
    port = consumer_health_port(settings)
    return Service(
        name="log-consumer",
        command=[sys.executable, "-m", "bot.cli", "log-consumer"],
        health_url=ready_url(settings, port),
        env=rasa_env(
            {
                **health_env(settings, "CAREBOT_CONSUMER_HEALTH_PORT", port),
                "CAREBOT_DATABASE_URL": settings.database_url,
                "CAREBOT_EVENT_BROKER_URL": settings.event_broker_url or "",
                "CAREBOT_EVENT_QUEUE": settings.event_queue,
                "CAREBOT_EVENT_EXCHANGE": settings.event_exchange,
                "CAREBOT_TRACKER_URL": settings.tracker_url,
                "CAREBOT_CONSUMER_RECONCILE_EVERY": str(settings.consumer_reconcile_every),
                "CAREBOT_CONSUMER_RECONCILE_MARGIN": str(settings.consumer_reconcile_margin),
                "CAREBOT_VAR_DIR": str(settings.var_dir),
            }
        ),
    )


class Stack:
    """The action server, the WeChat simulator (without a real OA), the Rasa server and the
    care scheduler.

    They start in that order and stop together; find one by name (`service("rasa")`).
    """

    def __init__(
        self,
        settings: Settings,
        model: Path,
        log_dir: Path | None = None,
        scheduler_env: Mapping[str, str] | None = None,
        parts: frozenset[str] | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.log_dir = log_dir
        self.scheduler_env = dict(scheduler_env or {})  # CAREBOT_SCHEDULER_* overrides
        self.parts = parts  # the services to run by name (None: all); the bench runs fewer
        self.services: list[Service] = []

    def start(self) -> None:
        simulated = runs_wechat_simulator(os.environ)
        wechat_env = wechat_simulator_env(self.settings) if simulated else {}
        endpoints, credentials = write_runtime_config(self.settings, {**os.environ, **wechat_env})
        services = [action_server(self.settings)]
        if self.settings.event_broker_url:
            services.append(log_consumer(self.settings))
        if simulated:
            followers = write_wechat_followers(self.settings)
            services.append(wechat_simulator(self.settings, followers))
        services.append(rasa_server(self.settings, self.model, endpoints, credentials, wechat_env))
        services.append(care_scheduler(self.settings, self.scheduler_env))
        services.append(staff_console(self.settings))
        if self.parts is not None:
            services = [service for service in services if service.name in self.parts]
        for service in services:
            self.services.append(service)
            service.start(self.settings.project_dir, self._log_path(service))
            wait_until_ready(service)

    def service(self, name: str) -> Service:
        return next(service for service in self.services if service.name == name)

    def restart(self, service: Service) -> None:
        """Starts a child again, as it was started (bot/supervisor.py decides when)."""
        service.stop()
        service.start(self.settings.project_dir, self._log_path(service))

    @property
    def wechat_sim_url(self) -> str | None:
        """The WeChat simulator's URL while this stack runs one."""
        running = any(service.name == "wechat-sim" for service in self.services)
        return self.settings.wechat_sim_url if running else None

    def _log_path(self, service: Service) -> Path | None:
        return self.log_dir / f"{service.name}.log" if self.log_dir else None

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
