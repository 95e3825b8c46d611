from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bot.runtime import (
    REST_CHANNEL,
    WEBCHAT_CHANNEL,
    Service,
    action_server,
    cors_arguments,
    credentials_config,
    endpoints_config,
    rasa_secrets,
    rasa_server,
    write_runtime_config,
)
from bot.settings import Settings, load_settings


def test_endpoints_point_at_our_action_server_and_a_persistent_tracker(tmp_path: Path) -> None:
    settings = load_settings({"CAREBOT_VAR_DIR": str(tmp_path), "CAREBOT_ACTION_PORT": "6055"})
    config = endpoints_config(settings)
    assert config["action_endpoint"]["url"] == "http://127.0.0.1:6055/webhook"
    assert config["tracker_store"] == {
        "type": "bot.tracker_store.CareSQLTrackerStore",
        "dialect": "sqlite",
        "db": str(tmp_path / "rasa_tracker.db"),
    }
    assert "lock_store" not in config


def test_every_turn_is_logged_to_the_crm_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    settings = load_settings({"CAREBOT_VAR_DIR": str(tmp_path), "CAREBOT_DATABASE_URL": url})
    assert endpoints_config(settings)["event_broker"] == {
        "type": "bot.interaction_log.CrmInteractionLog",
        "url": url,
    }


def test_a_redis_url_gives_a_redis_lock_store(tmp_path: Path) -> None:
    settings = load_settings(
        {"CAREBOT_VAR_DIR": str(tmp_path), "CAREBOT_REDIS_URL": "redis://127.0.0.1:6380/3"}
    )
    assert endpoints_config(settings)["lock_store"] == {
        "type": "redis",
        "url": "127.0.0.1",
        "port": 6380,
        "db": 3,
        "key_prefix": "carebot",
    }


def _settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"CAREBOT_VAR_DIR": str(tmp_path), **env})


def test_the_web_chat_keeps_its_secrets_out_of_the_credentials_file(tmp_path: Path) -> None:
    settings = _settings(tmp_path, CAREBOT_DEMO="1")
    section = credentials_config(settings, {})[WEBCHAT_CHANNEL]
    assert section["secret"] == "${CAREBOT_WEBCHAT_SECRET}"
    assert section["database_url"] == "${CAREBOT_DATABASE_URL}"
    assert section["demo_login"] is True and "redis_url" not in section
    assert "socketio" not in credentials_config(settings, {})  # ours replaces Rasa's


def test_the_web_chat_shares_rooms_through_redis_and_the_demo_login_can_be_off(
    tmp_path: Path,
) -> None:
    env = {"CAREBOT_REDIS_URL": "redis://127.0.0.1:6379/1", "CAREBOT_WEBCHAT_DEMO_LOGIN": "0"}
    section = credentials_config(_settings(tmp_path, CAREBOT_DEMO="1"), env)[WEBCHAT_CHANNEL]
    assert section["redis_url"] == "${CAREBOT_REDIS_URL}" and section["demo_login"] is False


def test_the_demo_login_exists_only_in_demo_mode(tmp_path: Path) -> None:
    section = credentials_config(_settings(tmp_path), {})[WEBCHAT_CHANNEL]
    assert section["demo_login"] is False


def test_the_rest_channel_is_off_unless_it_has_a_secret(tmp_path: Path) -> None:
    assert REST_CHANNEL not in credentials_config(_settings(tmp_path), {})
    settings = _settings(tmp_path, CAREBOT_REST_SECRET="s" * 24)
    assert credentials_config(settings, {})[REST_CHANNEL] == {"secret": "${CAREBOT_REST_SECRET}"}
    assert rasa_secrets(settings)["CAREBOT_REST_SECRET"] == "s" * 24


def test_web_origins_come_from_the_allow_list_only(tmp_path: Path) -> None:
    closed = _settings(tmp_path)
    assert credentials_config(closed, {})[WEBCHAT_CHANNEL]["allowed_origins"] == []
    assert cors_arguments(closed) == []  # same origin only: Rasa sends no CORS headers
    settings = _settings(
        tmp_path, CAREBOT_ALLOWED_ORIGINS="https://shop.example.com/, https://m.example.com"
    )
    expected = ["https://shop.example.com", "https://m.example.com"]
    assert credentials_config(settings, {})[WEBCHAT_CHANNEL]["allowed_origins"] == expected
    assert cors_arguments(settings) == ["--cors", *expected]


def test_the_action_server_is_called_with_a_secret_only_rasa_has(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    endpoint = endpoints_config(settings)["action_endpoint"]
    assert endpoint["headers"] == {"Authorization": "Bearer ${CAREBOT_ACTION_SECRET}"}
    assert len(settings.action_secret) >= 32
    assert rasa_secrets(settings)["CAREBOT_ACTION_SECRET"] == settings.action_secret
    assert action_server(settings).env["CAREBOT_ACTION_SECRET"] == settings.action_secret
    assert (tmp_path / "action_secret").stat().st_mode & 0o777 == 0o600


def test_no_secret_is_on_a_command_line(tmp_path: Path) -> None:
    settings = _settings(tmp_path, CAREBOT_API_TOKEN="-starts-with-a-dash")
    written = write_runtime_config(settings, {})
    server = rasa_server(settings, tmp_path / "model.tar.gz", *written)
    command = " ".join(server.command)
    for secret in (settings.api_token, settings.action_secret, "--auth-token"):
        assert secret not in command
    assert server.env["CAREBOT_API_TOKEN"] == "-starts-with-a-dash"
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in written)


def test_each_service_binds_its_own_address(tmp_path: Path) -> None:
    settings = _settings(tmp_path, CAREBOT_HOST="0.0.0.0")
    assert action_server(settings).env["SANIC_HOST"] == "127.0.0.1"
    assert settings.action_url == "http://127.0.0.1:5055/webhook"
    assert settings.console_host == "127.0.0.1" and settings.wechat_sim_host == "127.0.0.1"
    assert "0.0.0.0" in rasa_server(settings, tmp_path / "m", tmp_path, tmp_path).command


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def test_stop_leaves_no_process_behind_even_grandchildren(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = f"import subprocess,time; p=subprocess.Popen(['sleep','300']); open({str(pid_file)!r},'w').write(str(p.pid)); time.sleep(300)"  # noqa: E501
    service = Service("sleeper", [sys.executable, "-c", script], "http://unused", dict(os.environ))
    service.start(tmp_path, tmp_path / "sleeper.log")
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.process is not None
    child, grandchild = service.process.pid, int(pid_file.read_text())
    assert _alive(child) and _alive(grandchild)

    service.stop(grace_s=5)

    assert not _alive(child)
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)
