"""The managers' campaigns page: on and off, the daily cap, the audience of the next planning run
(masked), every change audited; agents and supervisors are refused."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from crm_store.audit import list_audit_entries
from crm_store.campaigns import get_campaign
from crm_store.customers import create_customer
from crm_store.db import session_scope
from crm_store.demo import DEMO_DAILY_CAPS
from tests.bot.console.conftest import Console

# The console's clock is 2026-11-21 02:00 UTC; the scheduler plans next at 00:05 UTC on the 22nd.
NEXT_RUN_DAY = date(2026, 11, 22)


def campaign(console: Console, key: str) -> Any:
    with session_scope(console.crm) as session:
        return get_campaign(session, key=key)


def changes(console: Console, key: str) -> list[Any]:
    with session_scope(console.crm) as session:
        return list_audit_entries(session, entity="campaign", entity_id=key)


def birthdays(console: Console, names: list[str]) -> list[int]:
    """Customers whose birthday is the next run's day, in the order they were created."""
    with session_scope(console.crm) as session:
        return [
            create_customer(session, name=name, birthday=date(1990, 11, 22), clock=console.clock).id
            for name in names
        ]


async def test_the_manager_sees_every_campaign_with_its_switch_and_cap(
    console: Console, browsers: Any
) -> None:
    manager = await browsers("manager")
    status, page = await manager.get("/campaigns")
    assert status == 200 and "活动管理" in page
    rows = re.findall(r'<tr data-campaign="(\w+)">(.*?)</tr>', page, re.S)
    assert [key for key, _ in rows] == [
        "delivery_follow_up",
        "warranty_reminder",
        "follow_up",
        "birthday",
        "holiday",
        "care_tip",
        "win_back",
    ]
    for key, row in rows:  # the demo's campaigns are on, within the demo's caps
        assert "已开启" in row and f"<td>{DEMO_DAILY_CAPS[key]}</td>" in row, key
    assert "2026-11-22" in page  # the day the next planning run plans


async def test_the_manager_switches_a_campaign_off_and_on_and_each_change_is_audited(
    console: Console, browsers: Any
) -> None:
    manager = await browsers("manager")
    status, _, location = await manager.post("/campaigns/win_back/switch", {"enabled": "0"})
    assert (status, location) == (303, "/campaigns/win_back")
    assert not campaign(console, "win_back").enabled
    status, page = await manager.get("/campaigns/win_back")
    assert status == 200 and 'id="status">已关闭' in page and "开启此活动" in page
    await manager.post("/campaigns/win_back/switch", {"enabled": "0"})  # again: no change
    await manager.post("/campaigns/win_back/switch", {"enabled": "1"})
    assert campaign(console, "win_back").enabled
    actor = f"staff:{console.staff_id('manager')}"
    assert [(e.actor, e.action, e.changes) for e in changes(console, "win_back")] == [
        (actor, "set_campaign_enabled", {"status": ["paused", "active"]}),
        (actor, "set_campaign_enabled", {"status": ["active", "paused"]}),
    ]
    _, page = await manager.get("/campaigns/win_back")
    assert "最近的更改" in page and page.count(actor) == 2


async def test_the_manager_sets_a_daily_cap_or_none_and_bad_caps_are_refused(
    console: Console, browsers: Any
) -> None:
    manager = await browsers("manager")
    status, _, location = await manager.post("/campaigns/follow_up/cap", {"daily_cap": "5"})
    assert (status, location) == (303, "/campaigns/follow_up")
    assert campaign(console, "follow_up").daily_cap == 5
    await manager.post("/campaigns/follow_up/cap", {"daily_cap": ""})
    assert campaign(console, "follow_up").daily_cap is None
    for bad in ("-1", "abc", "2.5", "1000001", "²", "１２"):
        status, page, _ = await manager.post("/campaigns/follow_up/cap", {"daily_cap": bad})
        assert status == 400 and "每日上限应为 0 到 1000000 的整数" in page, bad
    assert campaign(console, "follow_up").daily_cap is None
    assert [e.changes for e in changes(console, "follow_up")] == [
        {"daily_cap": [5, None]},
        {"daily_cap": [DEMO_DAILY_CAPS["follow_up"], 5]},
    ]
    status, page = await manager.get("/campaigns/follow_up")
    assert 'id="daily-cap">不限' in page


async def test_the_preview_shows_the_next_runs_audience_masked_and_capped(
    console: Console, browsers: Any
) -> None:
    first, second, third = birthdays(console, ["欧阳娜娜", "司马相如", "诸葛孔明"])
    manager = await browsers("manager")
    await manager.post("/campaigns/birthday/switch", {"enabled": "0"})  # seen before switching on
    await manager.post("/campaigns/birthday/cap", {"daily_cap": "2"})
    status, page = await manager.get("/campaigns/birthday")
    assert status == 200 and f"下一次安排的受众：{NEXT_RUN_DAY}" in page
    assert re.search(r'id="sending">(\d+)<', page).group(1) == "2"  # type: ignore[union-attr]
    assert re.search(r'data-outcome="daily_cap"><td>[^<]+</td><td>(\d+)', page) is not None
    sample = page.split('id="sample"')[1]
    ids = [int(found) for found in re.findall(r"<tr><td>(\d+)</td>", sample)]
    assert ids == [first, second] and third not in ids  # the longest-standing members first
    assert "欧***" in sample and "司***" in sample
    assert "欧阳娜娜" not in page and "司马相如" not in page  # names are masked
    # the preview wrote nothing: no outbox row, the campaign still off
    assert not campaign(console, "birthday").enabled


async def test_an_agent_may_neither_see_nor_change_campaigns(
    console: Console, browsers: Any
) -> None:
    agent = await browsers("agent")
    status, page = await agent.get("/campaigns")
    assert status == 403 and "无权访问" in page
    assert (await agent.get("/campaigns/win_back"))[0] == 403
    assert (await agent.post("/campaigns/win_back/switch", {"enabled": "0"}))[0] == 403
    assert (await agent.post("/campaigns/win_back/cap", {"daily_cap": "1"}))[0] == 403
    assert campaign(console, "win_back").enabled and changes(console, "win_back") == []
    _, queue = await agent.get("/queue")
    assert "/campaigns" not in queue  # the menu does not offer it


async def test_a_post_without_the_csrf_token_changes_nothing(
    console: Console, browsers: Any
) -> None:
    manager = await browsers("manager")
    status, _, _ = await manager.post("/campaigns/win_back/switch", {"enabled": "0"}, csrf=False)
    assert status == 403 and campaign(console, "win_back").enabled


async def test_an_unknown_campaign_is_a_404(browsers: Any) -> None:
    manager = await browsers("manager")
    assert (await manager.get("/campaigns/anniversary"))[0] == 404
    assert (await manager.post("/campaigns/anniversary/switch", {"enabled": "1"}))[0] == 404
