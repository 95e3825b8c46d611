"""Issue 15 on the running system: a member identifies with a code, chats on REST and WeChat,
answers a survey and gets a follow-up ticket; `carebot forget` then erases them everywhere
while the system runs, and the dashboard's totals stay. The log never shows a full phone
number, and a one-time code only in the demo SMS stub's own line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlparse

import pytest
from sqlalchemy import select

from bot.settings import PROJECT_DIR
from bot.tracker_store import tracker_texts
from crm_store.customers import create_customer
from crm_store.dashboard import FIGURES, DashboardFilter, read_figure
from crm_store.identities import link_identity
from crm_store.models import Base
from crm_store.tickets import list_tickets
from tests.integration.system import TOKEN, System
from tests.integration.test_care import crm, said, sms_code
from tests.integration.test_wechat_sim import act, bot_records, last_id, sim_call

pytestmark = pytest.mark.integration
VERBATIMS = {"comments", "misunderstood", "follow-ups"}


def dashboard(system: System) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    window = DashboardFilter(since=now - timedelta(days=2), until=now + timedelta(days=1))
    with crm(system) as session:
        return {
            name: read_figure(session, name, window) for name in FIGURES if name not in VERBATIMS
        }


def everything_in_the_crm(system: System) -> str:
    with crm(system) as session:
        rows = [
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table))
        ]
    return json.dumps(rows, ensure_ascii=False)


def carebot(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    """A `carebot` command against the running system, as its operator runs it."""
    env = dict(
        os.environ,
        CAREBOT_VAR_DIR=str(system.var_dir),
        CAREBOT_DATABASE_URL=f"sqlite:///{system.var_dir / 'crm.db'}",
        CAREBOT_RASA_PORT=str(urlparse(system.rasa_url).port),
        CAREBOT_WECHAT_SIM_PORT=str(urlparse(system.wechat_sim_url or "").port),
        CAREBOT_API_TOKEN=TOKEN,
        RASA_TELEMETRY_ENABLED="false",
    )
    env.pop("CAREBOT_WECHAT_APP_ID", None)
    command = [sys.executable, "-m", "bot.cli", *args]
    return subprocess.run(
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120
    )


def test_a_forgotten_member_is_nowhere_and_the_totals_stay(system: System) -> None:
    nonce = uuid.uuid4().hex[:8]
    name, phone = "孙悦然", f"137{uuid.uuid4().int % 10**8:08d}"
    masked = f"{phone[:3]}****{phone[-4:]}"
    # a REST sender with a "/": its conversation `rest:pd/<nonce>` is erased through Rasa's HTTP
    # API by its raw id (bot/rasa_api.py), which the real server reads as it is
    sender, openid = f"pd/{nonce}", f"o_pd_{nonce}"
    with crm(system) as session:
        member = create_customer(session, name=name, phone=phone)
        link_identity(session, customer_id=member.id, kind="wechat_openid", value=openid)

    # identified with a code on REST, then a chat with a survey and its follow-up ticket
    assert said(system.say(sender, "我还有多少积分"), "utter_ask_identify_phone")
    assert said(system.say(sender, phone), "utter_ask_otp_code")
    code = sms_code(system, masked)
    assert said(system.say(sender, code), "utter_identified")
    system.say(sender, f"我家猫叫墨墨{nonce}，电话是{phone}")
    assert said(system.say(sender, "好的，再见"), "utter_ask_survey_csat")
    assert said(system.say(sender, "2分吧"), "utter_ask_survey_nps")  # never surveyed: both
    assert said(system.say(sender, "3分"), "utter_ask_survey_comment")
    assert said(system.say(sender, f"快递太慢了{nonce}"), "utter_survey_detractor")
    with crm(system) as session:
        assert list_tickets(session, customer_id=member.id)
    # and on WeChat, in the simulator
    since = last_id(system)
    act(system, openid, "event", {"event": "subscribe"})
    act(system, openid, "send", {"text": f"微信上问问{nonce}"})
    assert bot_records(system, openid, since, "passive")
    assert nonce in everything_in_the_crm(system)
    before = dashboard(system)
    encoded = quote(f"rest:{sender}", safe="")  # rest%3Apd%2F...: Rasa does not decode it
    status, other = system.get(f"/conversations/{encoded}/tracker", token=True)
    assert status == 200 and not [e for e in other["events"] if e.get("event") == "user"]

    forgotten = carebot(system, "forget", str(member.id))
    assert forgotten.returncode == 0, forgotten.stderr
    assert "forgotten" in forgotten.stdout and "Rasa conversations emptied: " in forgotten.stdout
    log_after_forget = system.log.stat().st_size

    stored = everything_in_the_crm(system)  # large: compared without pytest's diff of it
    assert [t for t in (name, phone, nonce, sender, openid) if t in stored] == []
    tracker_db = system.var_dir / "rasa_tracker.db"
    for conversation in (f"rest:{sender}", openid):
        left = tracker_texts(tracker_db, conversation)
        assert left == [], (conversation, forgotten.stdout, forgotten.stderr[-3000:], left[:2])
        status, tracker = system.get(f"/conversations/{conversation}/tracker", token=True)
        said_there = [e for e in tracker["events"] if e.get("event") in ("user", "bot")]
        assert status == 200 and said_there == []  # a fresh, empty conversation
    assert sim_call(system, "GET", f"/sim/api/log?openid={openid}") == []
    assert dashboard(system) == before

    # the system goes on; nothing written afterwards names them
    system.say(f"pd-other-{nonce}", "你们开发票吗")
    time.sleep(1)
    with system.log.open("rb") as log:
        log.seek(log_after_forget)
        later = log.read().decode("utf-8", "replace")
    assert [t for t in (name, phone, nonce, openid) if t in later] == []

    # the whole conversation's log: never the phone; the code only on the demo stub's line
    whole = system.log.read_text(encoding="utf-8", errors="replace")
    assert (phone in whole) is False
    assert all("SMS stub: one-time code" in line for line in whole.splitlines() if code in line)

    # an export now holds the anonymous remains only
    exported = carebot(system, "export-customer", str(member.id))
    assert exported.returncode == 0, exported.stderr
    assert [t for t in (name, phone) if t in exported.stdout] == []
    assert json.loads(exported.stdout)["customer"]["erased_at"]
