"""The whole system as `make run` starts it, over its real HTTP and socket.io interfaces.

The test that stops the system with Ctrl-C (SIGINT) is marked `stops_system`, which runs it last.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from bot.settings import PROJECT_DIR
from tests.integration.system import REST_AUTH, System, alive_pids, children_of

pytestmark = pytest.mark.integration


def response_texts(name: str) -> set[str]:
    domain = yaml.safe_load((PROJECT_DIR / "domain.yml").read_text(encoding="utf-8"))
    return {variant["text"] for variant in domain["responses"][name]}


def texts(replies: list[dict[str, Any]]) -> list[str]:
    return [reply["text"] for reply in replies if "text" in reply]


def test_greeting_over_rest(system: System) -> None:
    replies = system.say(f"t-{uuid.uuid4().hex}", "你好")
    assert set(texts(replies)) & response_texts("utter_greet")


def test_traditional_chinese_is_understood(system: System) -> None:
    replies = system.say(f"t-{uuid.uuid4().hex}", "我想退貨，東西不想要了")
    assert texts(replies) == list(response_texts("utter_ask_identify_phone"))


def test_faq_is_answered_by_the_response_selector(system: System) -> None:
    replies = system.say(f"t-{uuid.uuid4().hex}", "你们开发票吗？要增值税专票")
    assert texts(replies) == list(response_texts("utter_faq/invoice"))


def test_gibberish_asks_to_rephrase_with_buttons(system: System) -> None:
    replies = system.say(f"t-{uuid.uuid4().hex}", "ｑｗｅｒｔｙ zxcv 囧囧")
    [reply] = [r for r in replies if "buttons" in r]
    assert reply["text"] in response_texts("utter_please_rephrase")
    assert {b["payload"] for b in reply["buttons"]} >= {"/request_human", "/order_status"}


def test_the_conversation_is_kept_in_the_tracker_store(system: System) -> None:
    sender = f"t-{uuid.uuid4().hex}"
    system.say(sender, "你好")
    status, tracker = system.get(f"/conversations/rest:{sender}/tracker", token=True)
    assert status == 200
    user_turns = [e["text"] for e in tracker["events"] if e["event"] == "user"]
    assert user_turns == ["你好"]
    assert (system.var_dir / "rasa_tracker.db").stat().st_size > 0


@pytest.mark.redis
def test_conversation_locks_live_in_redis(system: System) -> None:
    """With CAREBOT_REDIS_URL set, every turn takes its conversation lock in Redis."""
    if system.redis_url is None:
        pytest.skip("Redis is not running here (under CI=true it must be)")
    sender = f"t-{uuid.uuid4().hex}"
    commands = _redis_commands_during(system.redis_url, lambda: system.say(sender, "你好"))
    assert any(f"carebot:lock:rest:{sender}" in command for command in commands)


def _redis_commands_during(url: str, action: Callable[[], object]) -> list[str]:
    import redis

    commands: list[str] = []
    client = redis.Redis.from_url(url)
    with client.monitor() as monitor:
        listener = threading.Thread(target=_collect, args=(monitor, commands), daemon=True)
        listener.start()
        action()
        time.sleep(0.5)
    return commands


def _collect(monitor: Any, commands: list[str]) -> None:
    try:
        for event in monitor.listen():
            commands.append(str(event["command"]))
    except Exception:  # the monitor connection closes when the test is done
        return


def test_http_api_needs_the_token(system: System) -> None:
    assert system.get("/status")[0] == 401
    status, body = system.get("/status", token=True)
    assert status == 200 and body["model_file"].startswith("carebot-")


@pytest.mark.parametrize("body", [b"{not json", b'{"message": "no sender"}', b"[]"])
def test_malformed_rest_requests_get_a_4xx_and_the_server_stays_up(
    system: System, body: bytes
) -> None:
    status, _ = system.post("/webhooks/rest/webhook", body, headers=REST_AUTH)
    assert 400 <= status < 500
    assert system.say(f"t-{uuid.uuid4().hex}", "谢谢")


@pytest.mark.stops_system
def test_ctrl_c_stops_everything_it_started(system: System) -> None:
    started = children_of(system.process.pid)
    assert len(started) >= 2  # the action server and the Rasa server, at least
    system.process.send_signal(signal.SIGINT)
    assert system.process.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while alive_pids(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive_pids(started)
