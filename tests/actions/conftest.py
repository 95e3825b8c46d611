"""Actions run for real against a CRM on SQLite seeded with the demo data: a Tracker and a
CollectingDispatcher stand in for the Rasa server."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.engine import Engine

from actions.base import CareAction
from actions.contact import ActionUpdateContact, ValidateUpdateContactForm
from actions.identity import ValidateIdentifyForm
from actions.sms import DemoStubSms
from crm_store.clock import fixed
from crm_store.db import make_engine
from crm_store.demo import seed
from crm_store.migrate import upgrade
from tests.actions.helpers import DOMAIN, NOW, SEEDED_AT, Run


@pytest.fixture(autouse=True)
def demo_sms(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SMS stub as demo mode runs it (`carebot run --demo`): codes in the log, for the tests
    to read as a customer reads their phone."""
    stub = DemoStubSms(reveal_codes=True)
    for action in (ValidateIdentifyForm, ValidateUpdateContactForm, ActionUpdateContact):
        monkeypatch.setattr(action, "sms", stub)


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "crm.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    seed(engine, customers=40, clock=fixed(SEEDED_AT))
    engine.dispose()
    return path


@pytest.fixture()
def crm(seeded_template: Path, tmp_path: Path) -> Iterator[Engine]:
    """A private copy of the seeded CRM for one test."""
    path = tmp_path / "crm.db"
    shutil.copyfile(seeded_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture()
def run(crm: Engine) -> Run:
    """run(action, tracker) -> (messages, events), on the test's CRM at NOW."""

    def run_action(
        action: CareAction, state: Tracker, now: datetime = NOW
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        action.engine = crm
        action.clock = fixed(now)
        dispatcher = CollectingDispatcher()
        events = asyncio.run(action.run(dispatcher, state, DOMAIN))
        return dispatcher.messages, events

    return run_action
