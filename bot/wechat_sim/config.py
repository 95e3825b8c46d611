"""The simulator's settings: from flags, else CAREBOT_WECHAT_* / CAREBOT_WECHAT_SIM_* variables.

The app id, secret, token and AES key are the ones the bot's channel uses (the same
CAREBOT_WECHAT_* variables); without CAREBOT_WECHAT_APP_ID the simulator uses the demo
credentials that `carebot run` keeps under var/, so both sides agree without any setup.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.channels.wechat import crypto
from bot.settings import demo_wechat_credentials, load_settings

HOUR = 3600.0
DEFAULT_TEMPLATES = ("TM_CAREBOT_NOTICE",)
DEMO_KEYS = ("app_id", "app_secret", "token", "aes_key")
MAX_OPENID = 64


@dataclass(frozen=True)
class SimConfig:
    """One simulated Official Account and how strictly its server behaves."""

    app_id: str
    app_secret: str
    token: str
    webhook_url: str
    aes_key: str | None = None  # the EncodingAESKey; set means safe mode
    original_id: str = "gh_carebot_demo"  # the account's 原始ID, ToUserName of every push
    host: str = "127.0.0.1"
    port: int = 5006
    quota: int = 5  # customer-service messages per user message (48-hour window)
    window_s: float = 48 * HOUR
    event_quota: int = 3  # after a follow or a menu click
    event_window_s: float = 60.0
    token_lifetime_s: int = 7200
    token_overlap_s: float = 300.0  # a replaced token keeps working this long
    daily_limit: int = 100_000  # calls per API per day before 45009
    token_daily_limit: int = 2000
    push_timeout_s: float = 5.0
    push_attempts: int = 3
    templates: frozenset[str] = field(default_factory=lambda: frozenset(DEFAULT_TEMPLATES))
    # Who follows the account from before the simulator started (WeChat knows its followers;
    # `carebot run` writes the CRM's linked openids to a file for it): followers, not listed on
    # the page until something happens to them.
    followers: tuple[str, ...] = ()

    @property
    def safe_mode(self) -> bool:
        return bool(self.aes_key)

    @property
    def aes_key_bytes(self) -> bytes | None:
        return crypto.aes_key(self.aes_key) if self.aes_key else None


FLAGS: dict[str, tuple[str, type, str]] = {
    # flag: (environment variable, type, help)
    "app_id": ("CAREBOT_WECHAT_APP_ID", str, "the OA's app id"),
    "app_secret": ("CAREBOT_WECHAT_APP_SECRET", str, "the OA's app secret"),
    "token": ("CAREBOT_WECHAT_TOKEN", str, "the push Token set in the OA console"),
    "aes_key": ("CAREBOT_WECHAT_AES_KEY", str, "EncodingAESKey (43 chars): safe mode"),
    "webhook_url": ("CAREBOT_WECHAT_SIM_WEBHOOK", str, "the bot's WeChat webhook URL"),
    "host": ("CAREBOT_WECHAT_SIM_HOST", str, "listen address"),
    "port": ("CAREBOT_WECHAT_SIM_PORT", int, "listen port (5006)"),
    "quota": ("CAREBOT_WECHAT_SIM_QUOTA", int, "CS messages per user message (5)"),
    "token_lifetime_s": ("CAREBOT_WECHAT_SIM_TOKEN_LIFETIME", int, "token lifetime, s (7200)"),
    "daily_limit": ("CAREBOT_WECHAT_SIM_DAILY_LIMIT", int, "calls per API per day (100000)"),
    "push_timeout_s": ("CAREBOT_WECHAT_SIM_PUSH_TIMEOUT", float, "push answer deadline, s (5)"),
    "push_attempts": ("CAREBOT_WECHAT_SIM_PUSH_ATTEMPTS", int, "pushes per message (3)"),
    "templates": ("CAREBOT_WECHAT_SIM_TEMPLATES", str, "known template ids, comma-separated"),
    "followers": ("CAREBOT_WECHAT_SIM_FOLLOWERS", str, "a file of openids, one a line: followers"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `carebot wechat-sim` flags; each defaults to its environment variable."""
    for name, (variable, kind, text) in FLAGS.items():
        flag = "--" + name.removesuffix("_s").replace("_", "-")
        metavar = "SECONDS" if name.endswith("_s") else None
        parser.add_argument(
            flag, dest=name, type=kind, metavar=metavar, help=f"{text}; env {variable}"
        )


def load_config(args: argparse.Namespace | None, env: Mapping[str, str]) -> SimConfig:
    """Flags first, then the environment, then the demo credentials and the defaults."""
    values: dict[str, Any] = {name: _value(args, env, name) for name in FLAGS}
    settings = load_settings(dict(env))
    if not values["app_id"]:
        values.update(_demo_credentials(settings.var_dir))
    if not values["webhook_url"]:
        values["webhook_url"] = f"{settings.rasa_url}/webhooks/wechat/webhook"
    missing = [name for name in ("app_secret", "token") if not values[name]]
    if missing:
        raise ValueError(f"the WeChat simulator needs {', '.join(missing)}")
    if values["aes_key"]:
        crypto.aes_key(str(values["aes_key"]))  # refuse a malformed key at start
    values["templates"] = _templates(values.pop("templates"), env)
    values["followers"] = read_followers(values.pop("followers"))
    return SimConfig(**{name: value for name, value in values.items() if value is not None})


def _templates(listed: str | None, env: Mapping[str, str]) -> frozenset[str]:
    """The known template ids: the listed ones (or the default) and the bot's own."""
    names = listed.split(",") if listed else list(DEFAULT_TEMPLATES)
    names.append(env.get("CAREBOT_WECHAT_TEMPLATE_ID") or "")
    return frozenset(name.strip() for name in names if name.strip())


def read_followers(path: str | None) -> tuple[str, ...]:
    """The openids in a followers file, one a line (blank lines and `#` comments skipped)."""
    if not path:
        return ()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ValueError(f"cannot read the followers file {path}: {error.strerror}") from error
    openids = tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))
    bad = next((o for o in openids if len(o) > MAX_OPENID or not o.isprintable()), None)
    if bad is not None:
        raise ValueError(f"the followers file {path} has a line that is not an openid: {bad!r}")
    return openids


def _value(args: argparse.Namespace | None, env: Mapping[str, str], name: str) -> object:
    given = getattr(args, name, None) if args is not None else None
    if given is not None:
        return given
    variable, kind, _ = FLAGS[name]
    raw = env.get(variable)
    return kind(raw) if raw else None


def _demo_credentials(var_dir: Path) -> dict[str, object]:
    demo = demo_wechat_credentials(var_dir)
    return {name: demo[f"CAREBOT_WECHAT_{name.upper()}"] for name in DEMO_KEYS}
