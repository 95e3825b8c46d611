"""`carebot campaigns preview|run-once|status` on a real SQLite CRM and a stub Rasa."""

from __future__ import annotations

import getpass
import urllib.parse
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bot.bench.care_dispatch import StubRasa
from bot.care.commands import PLAN_TIME, clock_for, render_status
from bot.cli import main
from crm_store.audit import list_audit_entries
from crm_store.campaigns import create_campaign
from crm_store.campaigns.rules import PlanSettings
from crm_store.clock import ManualClock
from crm_store.customers import create_customer
from crm_store.db import session_scope
from crm_store.identities import link_identity
from crm_store.models import Campaign, CareMessage
from crm_store.outbox import claim_due_messages, enqueue_care_message, mark_sent, mark_skipped
from crm_store.win_back_outcomes import CONTROL_GROUP_REASON, record_win_back_outcomes

BIRTHDAY = date(2026, 12, 1)


@pytest.fixture
def crm(sqlite_url: str, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("CAREBOT_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("CAREBOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CAREBOT_API_TOKEN", "cli-test")
    monkeypatch.delenv("CAREBOT_CRASH_AT", raising=False)
    return engine


def _birthday_follower(engine: Engine) -> int:
    with session_scope(engine) as session:
        customer = create_customer(
            session,
            name="王小明",
            birthday=date(1990, 12, 1),
            preferred_channel="wechat",
            clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc),
        )
        link_identity(session, customer_id=customer.id, kind="wechat_openid", value="o_demo")
        return customer.id


def _count(engine: Engine, table: type) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(table)))


def test_with_a_date_the_commands_act_when_planned_messages_fall_due() -> None:
    assert PlanSettings().send_at == PLAN_TIME
    assert clock_for(BIRTHDAY)() == datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)


def test_preview_shows_who_would_get_what_and_writes_nothing(
    crm: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    _birthday_follower(crm)
    assert main(["campaigns", "preview", "birthday", "--date", "2026-12-01"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("birthday on 2026-12-01: 1 candidate(s) shown (nothing was sent)")
    assert "王小明" in out and "wechat" in out
    assert _count(crm, CareMessage) == 0 and _count(crm, Campaign) == 0


def test_preview_refuses_an_unknown_campaign(
    crm: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["campaigns", "preview", "anniversary"]) == 2
    assert "no campaign anniversary" in capsys.readouterr().out


def test_run_once_plans_the_day_and_sends_what_is_due(
    crm: Engine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    customer_id = _birthday_follower(crm)
    with StubRasa() as rasa:
        monkeypatch.setenv("CAREBOT_RASA_PORT", str(urllib.parse.urlparse(rasa.url).port))
        # a new installation: every campaign is off until someone switches it on
        assert main(["campaigns", "run-once", "--date", "2026-12-01"]) == 0
        assert "birthday: off, not planned" in capsys.readouterr().out
        assert rasa.triggers == [] and _count(crm, CareMessage) == 0
        assert main(["campaigns", "enable", "birthday"]) == 0
        assert capsys.readouterr().out == "birthday: on, at most 100 a day\n"
        assert main(["campaigns", "run-once", "--date", "2026-12-01"]) == 0
    out = capsys.readouterr().out
    assert "planned birthday for 2026-12-01" in out and "dispatched: 1 sent" in out
    assert "follow_up: off, not planned" in out
    [trigger] = rasa.triggers
    assert (trigger.conversation_id, trigger.output_channel, trigger.intent) == (
        "o_demo",
        "wechat",
        "EXTERNAL_care_message",
    )
    with session_scope(crm) as session:
        row = session.scalars(select(CareMessage)).one()
        assert (row.customer_id, row.state, row.period) == (customer_id, "sent", "2026")


def test_status_shows_the_outbox_and_the_win_back_uplift(
    crm: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    clock = ManualClock(datetime.combine(BIRTHDAY, time(2), timezone.utc))
    with session_scope(crm) as session:
        create_campaign(session, key="win_back", name="老客召回", kind="win_back", category="offer")
        for n in range(4):
            customer = create_customer(session, name=f"顾客{n}", clock=clock)
            message, _ = enqueue_care_message(
                session,
                customer_id=customer.id,
                campaign_key="win_back",
                period="2026-H2",
                channel="web",
                clock=clock,
            )
            if n % 2:
                mark_skipped(session, message_id=message.id, reason=CONTROL_GROUP_REASON)
            else:
                [claimed] = claim_due_messages(session, clock=clock)
                mark_sent(session, message_id=message.id, claim_token=claimed.claim_token)
        clock.advance(timedelta(days=30))
        record_win_back_outcomes(session, clock=clock)
    assert main(["campaigns", "status"]) == 0
    out = capsys.readouterr().out
    assert "win_back" in out.splitlines()[1]
    assert out.splitlines()[1].split() == ["win_back", "0", "0", "2", "0", "2"]
    assert "treated 0/2 came back, control 0/2" in out
    assert "uplift +0.0 pts (95% CI -65.8 .. +65.8)" in out  # 2 per arm: a wide interval
    assert "win_back: on, no cap" in out


def test_campaigns_are_switched_and_capped_from_the_command_line(
    crm: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["campaigns", "cap", "follow_up", "30"]) == 0
    assert capsys.readouterr().out == "follow_up: off, at most 30 a day\n"
    assert main(["campaigns", "enable", "follow_up"]) == 0
    assert main(["campaigns", "cap", "follow_up", "none"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "follow_up: on, no cap"
    assert main(["campaigns", "disable", "follow_up"]) == 0
    assert capsys.readouterr().out == "follow_up: off, no cap\n"
    assert main(["campaigns", "cap", "follow_up", "-3"]) == 2
    assert "a daily cap is a whole number from 0 to 1000000" in capsys.readouterr().out
    assert main(["campaigns", "enable", "anniversary"]) == 2
    with pytest.raises(SystemExit):
        main(["campaigns", "cap", "follow_up", "lots"])
    with session_scope(crm) as session:
        entries = list_audit_entries(session, entity="campaign", entity_id="follow_up")
    actor = f"cli:{getpass.getuser()}"
    assert [(e.actor, e.action) for e in reversed(entries)] == [
        (actor, "set_campaign_daily_cap"),
        (actor, "set_campaign_enabled"),
        (actor, "set_campaign_daily_cap"),
        (actor, "set_campaign_enabled"),
    ]


def test_status_of_an_empty_outbox() -> None:
    assert render_status({}, ("pending", "sent")).splitlines()[1] == "(no care messages yet)"
