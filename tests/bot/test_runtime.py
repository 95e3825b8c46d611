from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bot.runtime import WEBCHAT_CHANNEL, Service, credentials_config, endpoints_config
from bot.settings import load_settings


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


def test_the_web_chat_keeps_its_secrets_out_of_the_credentials_file() -> None:
    section = credentials_config({})[WEBCHAT_CHANNEL]
    assert section["secret"] == "${CAREBOT_WEBCHAT_SECRET}"
    assert section["database_url"] == "${CAREBOT_DATABASE_URL}"
    assert section["demo_login"] is True and "redis_url" not in section
    assert "socketio" not in credentials_config({})  # ours replaces Rasa's


def test_the_web_chat_shares_rooms_through_redis_and_the_demo_login_can_be_off() -> None:
    env = {"CAREBOT_REDIS_URL": "redis://127.0.0.1:6379/1", "CAREBOT_WEBCHAT_DEMO_LOGIN": "0"}
    section = credentials_config(env)[WEBCHAT_CHANNEL]
    assert section["redis_url"] == "${CAREBOT_REDIS_URL}" and section["demo_login"] is False


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
