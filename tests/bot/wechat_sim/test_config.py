"""Where the simulator's settings come from, and how `carebot run` wires it to the bot."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from bot.cli import build_parser, print_where_to_chat
from bot.runtime import (
    WECHAT_CHANNEL,
    credentials_config,
    runs_wechat_simulator,
    wechat_simulator,
    wechat_simulator_env,
)
from bot.settings import DEMO_WECHAT_APP_ID, load_settings
from bot.wechat_sim.config import load_config

AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    env = {
        "CAREBOT_VAR_DIR": str(tmp_path),
        "CAREBOT_WECHAT_APP_ID": "wx_env",
        "CAREBOT_WECHAT_APP_SECRET": "env-secret",
        "CAREBOT_WECHAT_TOKEN": "envtoken",
        "CAREBOT_WECHAT_SIM_QUOTA": "20",
        "CAREBOT_WECHAT_TEMPLATE_ID": "TM_BOT",
    }
    args = build_parser().parse_args(["wechat-sim", "--app-id", "wx_flag", "--port", "6100"])
    config = load_config(args, env)
    assert (config.app_id, config.app_secret, config.port, config.quota) == (
        "wx_flag",
        "env-secret",
        6100,
        20,
    )
    assert config.webhook_url == "http://127.0.0.1:5005/webhooks/wechat/webhook"
    assert config.templates == {"TM_CAREBOT_NOTICE", "TM_BOT"}
    assert not config.safe_mode


def test_without_an_app_id_it_uses_the_demo_credentials_kept_under_var(tmp_path: Path) -> None:
    env = {"CAREBOT_VAR_DIR": str(tmp_path)}
    first, again = load_config(None, env), load_config(None, env)
    assert first.app_id == DEMO_WECHAT_APP_ID and first.safe_mode
    assert first == again  # stored, so a restart keeps them
    assert len(first.aes_key or "") == 43 and (first.aes_key or "").isalnum()
    assert (tmp_path / "wechat_sim_secret").stat().st_mode & 0o077 == 0


def test_an_incomplete_or_malformed_configuration_is_refused(tmp_path: Path) -> None:
    env = {"CAREBOT_VAR_DIR": str(tmp_path), "CAREBOT_WECHAT_APP_ID": "wx_env"}
    with pytest.raises(ValueError, match="app_secret, token"):
        load_config(None, env)
    env |= {"CAREBOT_WECHAT_APP_SECRET": "s", "CAREBOT_WECHAT_TOKEN": "t"}
    with pytest.raises(ValueError, match="43"):
        load_config(argparse.Namespace(aes_key="short"), env)


def test_carebot_run_points_the_bot_at_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAREBOT_WECHAT_MENU", raising=False)
    monkeypatch.delenv("CAREBOT_WECHAT_TEMPLATE_ID", raising=False)
    settings = load_settings({"CAREBOT_VAR_DIR": str(tmp_path), "CAREBOT_WECHAT_SIM_PORT": "6200"})
    env = wechat_simulator_env(settings)
    assert runs_wechat_simulator({}) and not runs_wechat_simulator(env)
    section = credentials_config(settings, env)[WECHAT_CHANNEL]
    assert section["api_base_url"] == "http://127.0.0.1:6200"
    assert section["aes_key"] == "${CAREBOT_WECHAT_AES_KEY}"  # safe mode, secret not written
    assert section["menu"] == {"ORDER": "/order_status", "POINTS": "/points_balance"}
    service = wechat_simulator(settings)
    assert service.health_url == "http://127.0.0.1:6200/sim/api/health"
    assert service.env["CAREBOT_WECHAT_TOKEN"] == env["CAREBOT_WECHAT_TOKEN"]
    assert service.env["CAREBOT_WECHAT_SIM_WEBHOOK"].endswith("/webhooks/wechat/webhook")
    assert json.loads(env["CAREBOT_WECHAT_MENU"])["ORDER"] == "/order_status"


def test_where_to_chat_names_the_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings({"CAREBOT_VAR_DIR": str(tmp_path)})
    print_where_to_chat(settings, settings.wechat_sim_url)
    assert "WeChat sim     http://127.0.0.1:5006/" in capsys.readouterr().out
    print_where_to_chat(settings)
    assert "WeChat sim" not in capsys.readouterr().out
