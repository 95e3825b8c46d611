"""The same probes against the production profile (no demo mode, PostgreSQL, an allowed
origin): nothing is seeded, no demo login or password exists, strangers are refused."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from typing import Any

import yaml
from sqlalchemy import func, select

from bot.tracker_store import tracker_texts
from crm_store.db import make_engine, session_scope
from crm_store.interactions import conversation_id_for, list_interactions
from crm_store.models import Customer, StaffUser
from tests.integration.system import REST_AUTH, System
from tests.security.conftest import SHOP_ORIGIN
from tests.security.test_ways_in import POINTS, WEBHOOK, raw


def test_nothing_is_seeded_into_a_production_database(
    production: System, postgres_crm_url: str
) -> None:
    engine = make_engine(postgres_crm_url)
    try:
        with session_scope(engine) as session:
            assert session.scalar(select(func.count()).select_from(Customer)) == 0
            assert session.scalar(select(func.count()).select_from(StaffUser)) == 0
    finally:
        engine.dispose()


def test_the_demo_password_and_the_demo_login_do_not_exist(production: System) -> None:
    assert raw(production.rasa_url + "/webhooks/webchat/demo-users")[0] in (403, 404)
    login = json.dumps({"user": "demo"}).encode()
    status, _, _ = raw(
        production.rasa_url + "/webhooks/webchat/demo-login",
        login,
        {"Content-Type": "application/json"},
    )
    assert status in (403, 404)
    form = urllib.parse.urlencode({"username": "manager", "password": "carebot-demo"}).encode()
    status, _, body = raw(str(production.console_url) + "/login", form)
    assert status != 303 and "/dashboard" not in body.decode(errors="replace")


def test_strangers_are_refused_and_the_back_end_is_served(production: System) -> None:
    assert production.post(WEBHOOK, {"sender": "demo", "message": POINTS})[0] == 401
    status, replies = production.post(
        WEBHOOK, {"sender": f"u-{uuid.uuid4().hex}", "message": "你好"}, headers=REST_AUTH
    )
    assert status == 200 and replies
    forged = json.dumps({"next_action": "action_greet", "tracker": {}, "domain": {}}).encode()
    webhook = production.action_url + "/webhook"
    assert raw(webhook, forged, {"Content-Type": "application/json"})[0] == 401


def test_the_allowed_origin_and_only_it_gets_a_cors_grant(production: System) -> None:
    status, headers, _ = raw(production.rasa_url + "/", None, {"Origin": SHOP_ORIGIN})
    assert status == 200 and headers.get("Access-Control-Allow-Origin") == SHOP_ORIGIN
    status, headers, _ = raw(production.rasa_url + "/", None, {"Origin": "https://evil.example"})
    assert not headers.get("Access-Control-Allow-Origin")
    handshake = production.rasa_url + "/socket.io/?EIO=4&transport=polling"
    assert raw(handshake, None, {"Origin": SHOP_ORIGIN})[0] == 200
    assert raw(handshake, None, {"Origin": "https://evil.example"})[0] == 400


def test_turns_go_through_rabbitmq_and_conversations_live_in_postgresql(
    production: System, postgres_crm_url: str, postgres_tracker_url: str
) -> None:
    sender = f"u-{uuid.uuid4().hex}"
    status, _ = production.post(WEBHOOK, {"sender": sender, "message": "你好"}, headers=REST_AUTH)
    assert status == 200
    conversation = f"rest:{sender}"
    stored = [json.loads(text) for text in tracker_texts(postgres_tracker_url, conversation)]
    assert [e["text"] for e in stored if e.get("event") == "user"] == ["你好"]
    engine = make_engine(postgres_crm_url)
    try:
        logged = wait_for_turns(engine, conversation, at_least=2)
    finally:
        engine.dispose()
    assert logged[0] == ("customer", "你好") and logged[1][0] == "bot"
    endpoints = yaml.safe_load((production.var_dir / "run" / "endpoints.yml").read_text())
    # Rasa's pika broker (ours retries what it could not publish): the Rasa server writes no turn
    assert endpoints["event_broker"]["type"] == "bot.event_broker.CarePikaEventBroker"


def wait_for_turns(engine: Any, conversation: str, *, at_least: int) -> list[tuple[str, str]]:
    """The CRM's turns of a conversation once the log consumer wrote them (bounded wait)."""
    deadline = time.monotonic() + 20
    while True:
        with session_scope(engine) as session:
            rows = list_interactions(session, conversation_id=conversation_id_for(conversation))
        if len(rows) >= at_least or time.monotonic() > deadline:
            return [(row.speaker, row.text or "") for row in rows]
        time.sleep(0.2)
