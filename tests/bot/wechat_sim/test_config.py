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
    write_wechat_followers,
)
from bot.settings import DEMO_WECHAT_APP_ID, load_settings
from bot.wechat_sim.config import load_config
from crm_store.customers import create_customer
from crm_store.db import make_engine, session_scope
from crm_store.identities import link_identity
from crm_store.migrate import upgrade

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


def test_the_followers_file_names_the_accounts_followers(tmp_path: Path) -> None:
    followers = tmp_path / "followers.txt"
    followers.write_text("# the CRM's linked openids\no_demo_openid\n\no_0000002a1b2c3d4e\n")
    env = {
        "CAREBOT_VAR_DIR": str(tmp_path),
        "CAREBOT_WECHAT_SIM_FOLLOWERS": str(followers),
    }
    assert load_config(None, env).followers == ("o_demo_openid", "o_0000002a1b2c3d4e")
    assert load_config(None, {"CAREBOT_VAR_DIR": str(tmp_path)}).followers == ()
    followers.write_text("o_ok\n" + "x" * 65 + "\n")
    with pytest.raises(ValueError, match="not an openid"):
        load_config(None, env)
    with pytest.raises(ValueError, match="cannot read the followers file"):
        load_config(argparse.Namespace(followers=str(tmp_path / "missing.txt")), env)


def test_carebot_run_tells_the_simulator_the_crms_followers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        for n, openid in enumerate(["o_first", "o_second"]):
            customer = create_customer(session, name=f"顾客{n}")
            link_identity(session, customer_id=customer.id, kind="wechat_openid", value=openid)
        link_identity(session, customer_id=customer.id, kind="web_user", value="web-user")
    engine.dispose()
    settings = load_settings({"CAREBOT_VAR_DIR": str(tmp_path), "CAREBOT_DATABASE_URL": url})
    path = write_wechat_followers(settings)
    assert path.read_text() == "o_first\no_second\n"
    assert path.stat().st_mode & 0o777 == 0o600
    service = wechat_simulator(settings, path)
    assert service.env["CAREBOT_WECHAT_SIM_FOLLOWERS"] == str(path)
    assert load_config(None, service.env).followers == ("o_first", "o_second")
