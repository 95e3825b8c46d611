"""Starts and stops the system's processes: the Rasa server and the action server.

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

import yaml

from bot.settings import Settings
from bot.training import rasa_env

READY_TIMEOUT_S = 240.0
INTERACTION_LOG = "bot.interaction_log.CrmInteractionLog"


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


def write_runtime_config(settings: Settings) -> tuple[Path, Path]:
    """Writes the endpoints and credentials files Rasa reads, from the settings."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    endpoints = settings.run_dir / "endpoints.yml"
    credentials = settings.run_dir / "credentials.yml"
    endpoints.write_text(yaml.safe_dump(endpoints_config(settings), allow_unicode=True))
    endpoints.chmod(0o600)  # the CRM database URL may carry a password
    credentials.write_text(yaml.safe_dump(credentials_config(), allow_unicode=True))
    return endpoints, credentials


def endpoints_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "action_endpoint": {"url": settings.action_url},
        "tracker_store": {
            "type": "bot.tracker_store.CareSQLTrackerStore",
            "dialect": "sqlite",
            "db": str(settings.tracker_db),
        },
        # every customer and bot turn goes to the CRM's interactions (bot/interaction_log.py)
        "event_broker": {"type": INTERACTION_LOG, "url": settings.database_url},
    }
    if settings.redis_url:
        config["lock_store"] = {"type": "redis", **_redis_endpoint(settings.redis_url)}
    return config


def _redis_endpoint(url: str) -> dict[str, Any]:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    return {
        "url": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 6379,
        "db": int(parsed.path.lstrip("/") or 0),
        "key_prefix": "carebot",
    }


def credentials_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bot.channels.rest.CareRestInput": None,
        "socketio": {
            "user_message_evt": "user_uttered",
            "bot_message_evt": "bot_uttered",
            "session_persistence": True,
        },
    }
    wechat = wechat_credentials(os.environ if env is None else env)
    if wechat is not None:
        config[WECHAT_CHANNEL] = wechat
    return config


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
    return section


def action_server(settings: Settings, extra_env: dict[str, str] | None = None) -> Service:
    return Service(
        name="action-server",
        command=[sys.executable, "-m", "rasa_sdk", "--actions", "actions"]
        + ["--port", str(settings.action_port)],
        health_url=f"http://{settings.host}:{settings.action_port}/health",
        env=rasa_env(
            {
                "SANIC_HOST": settings.host,  # rasa-sdk binds 0.0.0.0 unless told otherwise
                "CAREBOT_DATABASE_URL": settings.database_url,
                # load the feedback analysis before serving, not during a customer's turn
                "CAREBOT_WARM_UP": "1",
                **(extra_env or {}),
            }
        ),
    )


def rasa_server(settings: Settings, model: Path, endpoints: Path, credentials: Path) -> Service:
    return Service(
        name="rasa",
        command=[sys.executable, "-m", "rasa", "run", "--model", str(model)]
        + ["--endpoints", str(endpoints), "--credentials", str(credentials)]
        + ["--interface", settings.host, "--port", str(settings.rasa_port)]
        + ["--enable-api", "--auth-token", settings.api_token, "--cors", "*"],
        health_url=f"{settings.rasa_url}/",
        env=rasa_env(),
    )


def wait_until_ready(service: Service, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Polls the service's health URL; raises if it dies or does not answer in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not service.is_running():
            raise RuntimeError(f"{service.name} exited before it was ready")
        if _answers(service.health_url):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{service.name} did not answer {service.health_url} in {timeout_s:.0f} s")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


class Stack:
    """The action server and the Rasa server, started in order and stopped together."""

    def __init__(self, settings: Settings, model: Path, log_dir: Path | None = None) -> None:
        self.settings = settings
        self.model = model
        self.log_dir = log_dir
        self.services: list[Service] = []

    def start(self) -> None:
        endpoints, credentials = write_runtime_config(self.settings)
        for service in (
            action_server(self.settings),
            rasa_server(self.settings, self.model, endpoints, credentials),
        ):
            self.services.append(service)
            service.start(self.settings.project_dir, self._log_path(service))
            wait_until_ready(service)

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
