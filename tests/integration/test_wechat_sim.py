"""WeChat end to end: the simulator `carebot run` starts, the bot's channel in safe mode, Rasa."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Any

import pytest

from crm_store.customers import create_customer
from crm_store.identities import link_identity
from tests.integration.system import TOKEN, System
from tests.integration.test_care import crm

pytestmark = pytest.mark.integration

DEMO = "o_demo_openid"  # 王小明 in the demo CRM


def sim_call(system: System, method: str, path: str, body: Any = None) -> Any:
    assert system.wechat_sim_url, "carebot run starts the simulator without a real OA"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        system.wechat_sim_url + path, data, {"Content-Type": "application/json"}, method=method
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def last_id(system: System) -> int:
    log = sim_call(system, "GET", "/sim/api/log")
    return int(log[-1]["id"]) if log else 0


def bot_records(
    system: System, openid: str, since: int, kind: str, timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """The bot's records for `openid` after `since`, once one of `kind` is there."""
    deadline = time.monotonic() + timeout_s
    while True:
        log = sim_call(system, "GET", f"/sim/api/log?openid={openid}&since={since}")
        sent = [record for record in log if record["sender"] == "bot"]
        if any(record["kind"] == kind for record in sent) or time.monotonic() > deadline:
            return sent
        time.sleep(0.3)


def act(system: System, openid: str, path: str, body: Any) -> dict[str, Any]:
    result: dict[str, Any] = sim_call(system, "POST", f"/sim/api/users/{openid}/{path}", body)
    assert not result["failed"], result
    return result


def trigger(system: System, openid: str, name: str, entities: dict[str, str]) -> int:
    path = f"/conversations/{openid}/trigger_intent?output_channel=wechat&token={TOKEN}"
    request = urllib.request.Request(
        system.rasa_url + path,
        json.dumps({"name": name, "entities": entities}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return int(answer.status)


def test_the_simulator_runs_in_safe_mode(system: System) -> None:
    health = sim_call(system, "GET", "/sim/api/health")
    assert health["mode"] == "safe"
    assert health["webhook"] == f"{system.rasa_url}/webhooks/wechat/webhook"


def test_a_demo_member_follows_greets_and_asks_for_an_order(system: System) -> None:
    since = last_id(system)
    act(system, DEMO, "event", {"event": "subscribe"})
    act(system, DEMO, "send", {"text": "你好"})
    asked = last_id(system)
    act(system, DEMO, "send", {"text": "我的订单到哪了"})

    greeted = bot_records(system, DEMO, since, "passive")
    assert any(r["kind"] == "passive" and r["content"] for r in greeted), greeted
    answered = bot_records(system, DEMO, asked, "passive")
    texts = [r["content"] for r in answered if r["errcode"] == 0]
    assert any("订单" in text for text in texts), answered


def test_an_image_gets_the_polite_unsupported_reply(system: System) -> None:
    result = act(system, DEMO, "image", None)
    assert result["passive"] and result["passive"]["content"]


def test_a_menu_click_reaches_the_bot(system: System) -> None:
    since = last_id(system)
    act(system, DEMO, "event", {"event": "CLICK", "key": "POINTS"})
    sent = bot_records(system, DEMO, since, "passive")
    assert any("积分" in r["content"] for r in sent), sent


def a_member_follower(system: System) -> str:
    """A new follower who is a member (surveys go to members only), never surveyed before."""
    openid = f"o_sim_{uuid.uuid4().hex[:12]}"
    with crm(system) as session:
        member = create_customer(session, name="赵敏", phone=f"135{uuid.uuid4().int % 10**8:08d}")
        link_identity(session, customer_id=member.id, kind="wechat_openid", value=openid)
    return openid


def test_trigger_intent_arrives_as_a_customer_service_message(system: System) -> None:
    openid = a_member_follower(system)  # the survey is due
    act(system, openid, "event", {"event": "subscribe"})
    act(system, openid, "send", {"text": "你好"})
    since = last_id(system)

    status = trigger(system, openid, "EXTERNAL_survey", {"product": "电热水壶"})

    assert status == 200
    sent = bot_records(system, openid, since, "cs")
    assert [r["kind"] for r in sent] and {r["kind"] for r in sent} == {"cs"}, sent
    assert all(r["errcode"] == 0 for r in sent) and any("电热水壶" in r["content"] for r in sent)


def test_outside_the_48_hours_trigger_intent_arrives_as_a_template_message(
    system: System,
) -> None:
    """Moves the simulator's clock 49 hours: kept last in this file, after every window test."""
    openid = a_member_follower(system)
    act(system, openid, "event", {"event": "subscribe"})
    act(system, openid, "send", {"text": "你好"})
    sim_call(system, "POST", "/sim/api/clock", {"advance_s": 49 * 3600})
    since = last_id(system)

    status = trigger(system, openid, "EXTERNAL_survey", {"product": "空气炸锅"})

    assert status == 200
    sent = bot_records(system, openid, since, "template")
    refused = [r for r in sent if r["kind"] == "cs"]
    assert refused and all(r["errcode"] == 45015 for r in refused), sent
    [template] = [r for r in sent if r["kind"] == "template"]
    assert template["errcode"] == 0 and "空气炸锅" in template["content"]
    assert template["detail"]["template_id"] == "TM_CAREBOT_NOTICE"
