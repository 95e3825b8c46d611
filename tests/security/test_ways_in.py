"""Impersonation and forged calls against the running system (`carebot run --demo`): the REST
channel, the action server, web origins, secrets on the command line and files under var/."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from bot.channels.rest import sign_body
from tests.integration.system import REST_AUTH, REST_SECRET, TOKEN, System, children_of

WEBHOOK = "/webhooks/rest/webhook"
POINTS = "我的积分还有多少"


def texts(replies: Any) -> str:
    return json.dumps(replies, ensure_ascii=False)


def raw(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    """(status, headers, body) of one request, whatever its status."""
    request = urllib.request.Request(url, data, headers or {}, method=None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_a_stranger_without_the_credential_reads_nobody(system: System) -> None:
    for body in (
        {"sender": "demo", "message": POINTS},
        {"sender": "o_demo_openid", "message": POINTS, "metadata": {"channel": "wechat"}},
    ):
        status, answer = system.post(WEBHOOK, body)
        assert status == 401 and "王小明" not in texts(answer)
    wrong = {"Authorization": "Bearer not-the-secret-at-all"}
    assert system.post(WEBHOOK, {"sender": "demo", "message": POINTS}, headers=wrong)[0] == 401


def test_a_rest_sender_can_never_be_a_web_user_or_an_openid(system: System) -> None:
    """With the credential, a REST sender is a conversation of its own namespace: the client's
    metadata and input_channel do not make it a WeChat follower or a web login."""
    for sender in ("o_demo_openid", "demo_web_user_x", f"web-{uuid.uuid4().hex}"):
        body = {
            "sender": sender,
            "message": POINTS,
            "metadata": {"channel": "wechat"},
            "input_channel": "wechat",
        }
        status, replies = system.post(WEBHOOK, body, headers=REST_AUTH)
        assert status == 200 and "王小明" not in texts(replies), replies
    status, tracker = system.get("/conversations/rest:o_demo_openid/tracker", token=True)
    assert status == 200
    [user] = [e for e in tracker["events"] if e["event"] == "user"][-1:]
    assert user["input_channel"] == "rest" and user["metadata"]["channel"] == "rest"
    assert "wechat" not in json.dumps(user["metadata"])


def test_the_back_end_vouches_for_its_own_user_ids(system: System) -> None:
    """王小明 is the back end's user "demo" (a rest_user identity): the credential makes it so."""
    body = {"sender": "demo", "message": POINTS}
    status, replies = system.post(WEBHOOK, body, headers=REST_AUTH)
    assert status == 200 and "积分" in texts(replies)


def test_a_signed_request_is_accepted_and_a_stale_or_altered_one_is_not(system: System) -> None:
    sender = f"s-{uuid.uuid4().hex}"
    body = json.dumps({"sender": sender, "message": "你好"}).encode()
    now = int(time.time())
    fresh = {"X-Carebot-Signature": sign_body(REST_SECRET, body, now)}
    assert system.post(WEBHOOK, body, headers=fresh)[0] == 200
    stale = {"X-Carebot-Signature": sign_body(REST_SECRET, body, now - 3600)}
    assert system.post(WEBHOOK, body, headers=stale)[0] == 401
    altered = json.dumps({"sender": sender, "message": POINTS}).encode()
    assert system.post(WEBHOOK, altered, headers=fresh)[0] == 401


def test_typed_external_intents_do_not_trigger_proactive_actions(system: System) -> None:
    sender = f"x-{uuid.uuid4().hex}"
    for message in ("/EXTERNAL_care_message", '/EXTERNAL_survey{"product": "电热水壶"}'):
        replies = system.say(sender, message)
        assert "电热水壶" not in texts(replies)
        assert "满意" not in texts(replies)  # no survey question


def test_a_forged_action_call_is_refused(system: System) -> None:
    tracker = {
        "sender_id": "attacker",
        "slots": {"customer_id": 1.0, "identified": True},
        "latest_message": {"text": POINTS, "intent": {"name": "points_balance"}},
        "events": [],
    }
    call = json.dumps(
        {"next_action": "action_points_balance", "tracker": tracker, "domain": {}}
    ).encode()
    webhook = system.action_url + "/webhook"
    for content_type in ("application/json", "text/plain"):
        status, _, body = raw(webhook, call, {"Content-Type": content_type})
        assert status == 401 and "王小明" not in body.decode(errors="replace")
    assert raw(system.action_url + "/actions")[0] == 401
    wrong = {"Content-Type": "application/json", "Authorization": "Bearer guessed"}
    assert raw(webhook, call, wrong)[0] == 401
    assert raw(system.action_url + "/health")[0] == 200


def test_rasa_holds_the_secret_the_action_server_asks_for(system: System) -> None:
    """The refusal above is the secret's doing: with it, the same server answers."""
    secret = (system.var_dir / "action_secret").read_text().strip()
    headers = {"Authorization": f"Bearer {secret}"}
    status, _, body = raw(system.action_url + "/actions", None, headers)
    assert status == 200 and "action_session_start" in body.decode()


@pytest.mark.parametrize("path", ["/", "/webhooks/rest/webhook", "/status"])
def test_a_foreign_origin_gets_no_cors_grant(system: System, path: str) -> None:
    origin = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    request = urllib.request.Request(system.rasa_url + path, headers=origin, method="OPTIONS")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            headers = response.headers
    except urllib.error.HTTPError as error:
        headers = error.headers
    assert headers.get("Access-Control-Allow-Origin") in (None, "")
    assert headers.get("Access-Control-Allow-Credentials") in (None, "")
    status, headers, _ = raw(system.rasa_url + "/", None, {"Origin": "https://evil.example"})
    assert status == 200 and not headers.get("Access-Control-Allow-Origin")


def test_the_web_chat_socket_refuses_a_foreign_origin(system: System) -> None:
    handshake = system.rasa_url + "/socket.io/?EIO=4&transport=polling"
    assert raw(handshake, None, {"Origin": "https://evil.example"})[0] == 400
    status, _, body = raw(handshake, None, {"Origin": system.rasa_url})
    assert status == 200 and b"sid" in body


def test_no_secret_is_visible_in_the_process_list(system: System) -> None:
    secrets = [TOKEN, REST_SECRET, (system.var_dir / "action_secret").read_text().strip()]
    for pid in children_of(system.process.pid) | {system.process.pid}:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        assert not any(secret in command for secret in secrets), command.replace("\0", " ")
        assert "--auth-token" not in command


def test_files_under_var_are_the_operators_alone(system: System) -> None:
    exposed = [
        str(path)
        for path in system.var_dir.rglob("*")
        if path.is_file() and path.stat().st_mode & 0o077 and path.name != "carebot-run.log"
    ]
    assert exposed == []


def test_an_oversized_body_gets_a_413_and_the_server_keeps_serving(system: System) -> None:
    """A body over 1 MiB is refused from its Content-Length, before it is read."""
    host, port = system.rasa_url.removeprefix("http://").split(":")
    head = (
        f"POST {WEBHOOK} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: {REST_AUTH['Authorization']}\r\nContent-Length: {8 * 1024 * 1024}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(head.encode() + b'{"sender": "big", "message": "')
        status_line = connection.recv(200).split(b"\r\n", 1)[0]
    assert status_line.split()[1] == b"413", status_line
    assert system.say(f"t-{uuid.uuid4().hex}", "谢谢")
