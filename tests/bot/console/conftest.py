"""The console on a seeded SQLite CRM, served for real on loopback, with a stub Rasa that records
what the console asks of it (the end-to-end tests use the real Rasa: tests/integration).

The fixtures are named in their decorators, so another folder's tests (tests/security) can
import them (`from tests.bot.console.conftest import console_fixture`) and take `console` as a
parameter without shadowing the import."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sanic import Sanic
from sqlalchemy.engine import Engine

from bot.console.app import create_app
from bot.console.config import ConsoleConfig
from crm_store.clock import ManualClock
from crm_store.db import make_engine, session_scope
from crm_store.demo import seed
from crm_store.handoffs import Handoff, Route, request_handoff
from crm_store.migrate import upgrade
from crm_store.staff import find_staff_user
from tests.bot.console.client import Browser
from tests.integration.system import free_port

SEEDED_AT = datetime(2026, 11, 20, 2, 0, tzinfo=timezone.utc)
names = itertools.count()
Sanic.test_mode = True  # what sanic-testing sets: several apps in one process, touched up once


@dataclass
class StubRasa:
    """Records appended events and triggered intents; answers the tracker it has built up."""

    appended: list[tuple[str, list[dict[str, Any]], str | None]] = field(default_factory=list)
    triggered: list[tuple[str, str, str | None]] = field(default_factory=list)
    trackers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    async def append(self, sender: str, events: list[dict[str, Any]], channel: str | None) -> None:
        self.appended.append((sender, events, channel))
        self.trackers.setdefault(sender, []).extend(events)

    async def trigger(self, sender: str, intent: str, channel: str | None) -> None:
        self.triggered.append((sender, intent, channel))

    async def events(self, sender: str) -> list[dict[str, Any]]:
        return list(self.trackers.get(sender, []))


@pytest.fixture(scope="session", name="seeded_template")
def seeded_template_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console-template") / "crm.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    seed(engine, customers=20, clock=lambda: SEEDED_AT)
    engine.dispose()
    return path


@pytest.fixture(name="crm")
def crm_fixture(seeded_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "crm.db"
    shutil.copyfile(seeded_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture(name="clock")
def clock_fixture() -> ManualClock:
    return ManualClock(SEEDED_AT + timedelta(days=1))


@dataclass
class Console:
    url: str
    rasa: StubRasa
    crm: Engine
    clock: ManualClock
    app: Any

    def staff_id(self, username: str) -> int:
        with session_scope(self.crm) as session:
            member = find_staff_user(session, username=username)
            assert member is not None
            return member.id

    def waiting(self, sender: str, customer_id: int | None = None, priority: int = 0) -> Handoff:
        with session_scope(self.crm) as session:
            return request_handoff(
                session,
                conversation_id=sender,
                channel="web",
                reason="customer_request",
                customer_id=customer_id,
                route=Route(priority, sender, "webchat"),
                clock=self.clock,
            )


@pytest.fixture(name="console")
async def console_fixture(crm: Engine, clock: ManualClock) -> AsyncIterator[Console]:
    url = str(crm.url)
    config = ConsoleConfig(url, "http://rasa.invalid", "token", "test-secret", timeout_check_s=3600)
    rasa = StubRasa()
    app = create_app(config, rasa, name=f"console_test_{next(names)}", clock=clock)
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    await server.startup()
    await server.start_serving()
    await server.after_start()
    try:
        yield Console(f"http://127.0.0.1:{port}", rasa, crm, clock, app)
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()


@pytest.fixture(name="browsers")
async def browsers_fixture(console: Console) -> AsyncIterator[Any]:
    opened: list[Browser] = []

    async def open_as(username: str | None = None) -> Browser:
        browser = Browser(console.url)
        opened.append(browser)
        if username:
            assert await browser.login(username) == 303
        return browser

    yield open_as
    for browser in opened:
        await browser.close()
