"""The web chat channel on the real system: a real socket.io client, the real Rasa server, action
server and CRM store (and, for two Rasa processes, real Redis)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import socketio

from bot.channels.webchat.auth import issue_token
from bot.runtime import Service, rasa_server, wait_until_ready, wechat_simulator_env
from bot.settings import load_settings, webchat_secret
from bot.training import ensure_model
from crm_store.customers import create_customer
from crm_store.db import make_engine, session_scope
from crm_store.identities import find_customer_by_identity, link_identity
from crm_store.orders import NewItem, create_order
from tests.integration.system import REST_SECRET, TOKEN, System, free_port
from tests.integration.test_system import response_texts
from tests.integration.webchat_client import WebChatCustomer

pytestmark = pytest.mark.integration


def a_web_customer(system: System, name: str = "赵敏", **profile: Any) -> tuple[str, str]:
    """A new CRM customer with a website login and one order: (their user id, the order id)."""
    user = f"u{secrets.token_hex(6)}"
    engine = make_engine(f"sqlite:///{system.var_dir / 'crm.db'}")
    try:
        with session_scope(engine) as session:
            phone = f"139{secrets.randbelow(10**8):08d}"
            customer = create_customer(session, name=name, phone=phone, **profile)
            link_identity(session, customer_id=customer.id, kind="web_user", value=user)
            order = create_order(session, customer_id=customer.id, items=[NewItem("AF-200")])
    finally:
        engine.dispose()
    return user, order.id


def login_token(system: System, user: str) -> str:
    """What the brand's website gives a logged-in customer: a token signed with the shared key."""
    return issue_token(user, webchat_secret(system.var_dir), datetime.now(timezone.utc))


def trigger_order_update(rasa_url: str, conversation: str, order_id: str) -> dict[str, Any]:
    body = json.dumps({"name": "EXTERNAL_order_update", "entities": {"order_id": order_id}})
    url = f"{rasa_url}/conversations/{conversation}/trigger_intent?output_channel=webchat"
    request = urllib.request.Request(
        f"{url}&token={TOKEN}", body.encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return dict(json.loads(answer.read()))


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages if "text" in m]


def run(coroutine: Any) -> Any:
    """Run a scenario on its own event loop, in a thread: the browser tests' Playwright keeps
    an event loop running in the main thread for the whole session."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def test_an_anonymous_visitor_chats_and_a_reload_shows_the_history_once(system: System) -> None:
    async def scenario() -> None:
        first = await WebChatCustomer(system.rasa_url).open()
        assert first.session_id and first.session_id.startswith("web-")
        assert first.history == []
        await first.say("你好")
        replies = await first.messages_until_quiet()
        assert set(texts(replies)) & response_texts("utter_greet")
        assert all(isinstance(m["message_id"], int) for m in replies)
        await first.close()

        again = await WebChatCustomer(system.rasa_url).open(first.session_id)
        assert again.session_id == first.session_id
        assert [(m["sender"], m.get("text")) for m in again.history] == [
            ("user", "你好"),
            *(("bot", m.get("text")) for m in replies),
        ]
        with pytest.raises(asyncio.TimeoutError):  # nothing is shown a second time
            await again.next_message(timeout=1.5)
        await again.close()

    run(scenario())
    time.sleep(1.0)  # the server notices the closed sockets
    # a customer closing the chat is a normal end of a websocket, not a server error
    assert "Invalid response type None" not in system.log.read_text(errors="replace")


def test_a_forged_session_id_gets_a_new_session(system: System) -> None:
    async def scenario() -> None:
        customer = await WebChatCustomer(system.rasa_url).open("demo")
        assert customer.session_id != "demo" and customer.session_id.startswith("web-")
        assert customer.history == []
        await customer.close()

    run(scenario())


def test_a_logged_in_customer_is_answered_by_name_on_every_device(system: System) -> None:
    user, _ = a_web_customer(system, "赵敏")

    async def scenario() -> None:
        phone = await WebChatCustomer(system.rasa_url, login_token(system, user)).open()
        assert phone.session_id == user
        await phone.say("我的积分还有多少")
        answer = " ".join(texts(await phone.messages_until_quiet()))
        assert "普通会员，当前积分 0 分" in answer  # their own account: identified by the login
        laptop = await WebChatCustomer(system.rasa_url, login_token(system, user)).open()
        assert laptop.session_id == user and laptop.history[0]["text"] == "我的积分还有多少"
        await phone.close()
        await laptop.close()

    run(scenario())


def test_a_proactive_message_reaches_a_connected_customer(system: System) -> None:
    user, order_id = a_web_customer(system)

    async def scenario() -> None:
        customer = await WebChatCustomer(system.rasa_url, login_token(system, user)).open()
        answer = await asyncio.to_thread(trigger_order_update, system.rasa_url, user, order_id)
        assert "messages" not in answer  # delivered on the channel, not returned to the caller
        shown = texts(await customer.messages_until_quiet())
        assert shown[0] in response_texts("utter_order_update")
        assert order_id in shown[1]
        await customer.close()

    run(scenario())


def test_a_message_for_an_offline_customer_is_shown_once_on_the_next_visit(
    system: System,
) -> None:
    user, order_id = a_web_customer(system)
    token = login_token(system, user)

    async def scenario() -> None:
        await asyncio.to_thread(trigger_order_update, system.rasa_url, user, order_id)
        back = await WebChatCustomer(system.rasa_url, token).open()
        waiting = [m for m in back.history if m["sender"] == "bot"]
        assert order_id in " ".join(texts(waiting)) and len(waiting) == len(
            {m["message_id"] for m in waiting}
        )
        await back.client.emit(
            "bot_ack", {"session_id": user, "message_id": waiting[-1]["message_id"]}
        )
        await asyncio.sleep(0.5)
        await back.close()

        later = await WebChatCustomer(system.rasa_url, token).open()
        ids = [m["message_id"] for m in later.history]
        assert ids == sorted(set(ids))  # in order, none twice
        with pytest.raises(asyncio.TimeoutError):
            await later.next_message(timeout=1.5)
        await later.close()

    run(scenario())


def test_a_bad_token_is_refused(system: System) -> None:
    async def scenario() -> None:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await WebChatCustomer(system.rasa_url, "not-a-token").open()

    run(scenario())


@pytest.mark.parametrize(
    "event",
    [None, "你好", {"message": ""}, {"message": 42}, {"message": "长" * 2001}, {"nothing": 1}],
)
def test_unusable_messages_are_refused_and_the_socket_keeps_working(
    system: System, event: Any
) -> None:
    async def scenario() -> None:
        customer = await WebChatCustomer(system.rasa_url).open()
        await customer.client.emit("user_uttered", event)
        await customer.client.emit("bot_ack", {"message_id": "x"})
        await customer.say("你好")
        assert set(texts(await customer.messages_until_quiet())) & response_texts("utter_greet")
        assert customer.errors
        await customer.close()

    run(scenario())


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{", 400),
        (b"[]", 400),
        (b"\xff\xfe\x00garbage", 400),
        (b"{" * 1_000_000, 400),  # a megabyte of noise
        (b'{"user": ["demo"]}', 400),
        (b'{"user": "intruder"}', 400),
        (b'{"user": "demo"}', 200),
    ],
)
def test_the_demo_login(system: System, body: bytes, status: int) -> None:
    code, answer = system.post("/webhooks/webchat/demo-login", body)
    assert code == status
    if status == 200:
        assert answer["user"] == "demo" and answer["name"] == "王小明" and answer["token"]


def test_the_widget_page_and_its_files_are_served_without_a_cdn(system: System) -> None:
    code, page = system.get("/webhooks/webchat/")
    assert code == 200 and "<html" in page.lower()
    assert "http://" not in page.replace(system.rasa_url, "") and "https://" not in page
    assert system.get("/webhooks/webchat/static/vendor/socket.io.min.js")[0] == 200
    assert system.get("/webhooks/webchat/static/../../bot/settings.py")[0] == 404
    code, users = system.get("/webhooks/webchat/demo-users")
    assert code == 200 and {"user": "demo", "name": "王小明"} in users


@pytest.fixture
def second_rasa(system: System, tmp_path: Path) -> Iterator[str]:
    """Another Rasa process of the same system (same stores, same Redis), on its own port."""
    if not system.redis_url:
        pytest.skip("two Rasa processes share rooms through Redis, which is not running")
    port = free_port()
    env = {
        "CAREBOT_VAR_DIR": str(system.var_dir),
        "CAREBOT_RASA_PORT": str(port),
        "CAREBOT_API_TOKEN": TOKEN,
        "CAREBOT_REST_SECRET": REST_SECRET,
        "CAREBOT_DATABASE_URL": f"sqlite:///{system.var_dir / 'crm.db'}",
        "CAREBOT_REDIS_URL": system.redis_url,
    }
    settings = load_settings(env)
    run_dir = system.var_dir / "run"
    model = ensure_model(settings.project_dir)  # the model the system runs: no training
    extra = {**env, **wechat_simulator_env(settings)}
    service: Service = rasa_server(
        settings, model, run_dir / "endpoints.yml", run_dir / "credentials.yml", extra
    )
    service.start(settings.project_dir, tmp_path / "second-rasa.log")
    try:
        wait_until_ready(service)
        yield settings.rasa_url
    finally:
        service.stop()


def test_an_emit_from_another_rasa_process_reaches_the_socket(
    system: System, second_rasa: str
) -> None:
    user, order_id = a_web_customer(system)

    async def scenario() -> None:
        customer = await WebChatCustomer(system.rasa_url, login_token(system, user)).open()
        await asyncio.to_thread(trigger_order_update, second_rasa, user, order_id)
        shown = texts(await customer.messages_until_quiet())
        assert any(order_id in text for text in shown)
        await customer.close()

    run(scenario())


def notify(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        CAREBOT_VAR_DIR=str(system.var_dir),
        CAREBOT_RASA_PORT=system.rasa_url.rsplit(":", 1)[1],
        CAREBOT_API_TOKEN=TOKEN,
        CAREBOT_DATABASE_URL=f"sqlite:///{system.var_dir / 'crm.db'}",
    )
    command = [sys.executable, "-m", "bot.cli", "notify", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def customer_id_of(system: System, user: str) -> int:
    engine = make_engine(f"sqlite:///{system.var_dir / 'crm.db'}")
    try:
        with session_scope(engine) as session:
            customer = find_customer_by_identity(session, kind="web_user", value=user)
            assert customer is not None
            return customer.id
    finally:
        engine.dispose()


def test_carebot_notify_routes_to_the_open_web_chat_or_waits(system: System) -> None:
    user, order_id = a_web_customer(system, preferred_channel="web")
    customer_id = str(customer_id_of(system, user))
    entity = f"order_id={order_id}"

    waiting = notify(system, customer_id, "EXTERNAL_order_update", "--entity", entity)
    assert waiting.returncode == 3 and "not sent" in waiting.stdout

    async def scenario() -> None:
        customer = await WebChatCustomer(system.rasa_url, login_token(system, user)).open()
        sent = await asyncio.to_thread(
            notify, system, customer_id, "EXTERNAL_order_update", "--entity", entity
        )
        assert sent.returncode == 0, sent.stderr
        assert f"web conversation {user}" in sent.stdout
        assert any(order_id in text for text in texts(await customer.messages_until_quiet()))
        await customer.close()

    run(scenario())
