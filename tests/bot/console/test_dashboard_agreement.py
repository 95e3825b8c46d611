"""The dashboard and `carebot report` agree to the last digit: for every figure, with the same
filters and options, the console's JSON equals the command line's JSON and its CSV export equals
the command line's CSV, byte for byte (on the small hand-counted CRM of the query tests)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.cli import main
from bot.console.dashboard import DIMENSIONS
from bot.reports.options import OPTIONS
from crm_store import migrate
from crm_store.dashboard import FIGURES
from crm_store.db import make_engine, session_scope
from crm_store.staff import create_staff_user
from tests.bot.console.client import PASSWORD
from tests.crm_store.dashboard_fixture import build

OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}
CASES = [  # (query string beyond October, the same as command-line arguments)
    ({"by": "tier", "channel": "wechat"}, ["--by", "tier", "--channel", "wechat"]),
    ({"by": "agent"}, ["--by", "agent"]),
    ({"period": "month", "tier": "普通"}, ["--period", "month", "--tier", "普通"]),
    ({"text": "退货", "page_size": "1"}, ["--text", "退货", "--page-size", "1"]),
    (
        {"polarity": "negative", "page": "2", "page_size": "1"},
        ["--polarity", "negative", "--page", "2", "--page-size", "1"],
    ),
    ({"agent": "agent"}, ["--agent", "agent"]),
    ({"agent": "bot", "channel": "web"}, ["--agent", "bot", "--channel", "web"]),
    ({"segment": "champions", "stage": "loyal"}, ["--segment", "champions", "--stage", "loyal"]),
    ({"limit": "1"}, ["--limit", "1"]),
]


@pytest.fixture(scope="module")
def fixture_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dashboard-agreement") / "crm.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        build(session)
        create_staff_user(
            session, username="manager", display_name="经理", role="manager", password=PASSWORD
        )
    engine.dispose()
    return path


@pytest.fixture()
def crm(
    fixture_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """The console's CRM (overriding conftest's demo seed) is the command line's CRM too."""
    path = tmp_path / "crm.db"
    shutil.copyfile(fixture_template, path)
    monkeypatch.setenv("CAREBOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CAREBOT_DATABASE_URL", f"sqlite:///{path}")
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def report(capsys: pytest.CaptureFixture[bytes], name: str, *arguments: str) -> bytes:
    days = ["--from", OCTOBER["from"], "--to", OCTOBER["to"]]
    assert main(["report", name, *days, *arguments]) == 0
    return capsys.readouterr().out


async def fetch(manager: Any, path: str, query: dict[str, str]) -> bytes:
    async with manager.http.get(manager.base + path, params={**OCTOBER, **query}) as answer:
        assert answer.status == 200, (path, query, await answer.text())
        return await answer.read()


@pytest.mark.parametrize("name", sorted(FIGURES))
async def test_every_figure_agrees_with_carebot_report(
    browsers: Any, capsysbinary: pytest.CaptureFixture[bytes], name: str
) -> None:
    manager = await browsers("manager")
    shown = json.loads(await fetch(manager, f"/api/dashboard/{name}", {}))
    assert shown == json.loads(report(capsysbinary, name, "--format", "json"))
    assert shown, f"the fixture has rows for {name}"
    exported = await fetch(manager, f"/dashboard/export/{name}", {})
    assert exported.startswith(b"\xef\xbb\xbf")
    assert exported == report(capsysbinary, name, "--format", "csv")


def applies(name: str, query: dict[str, str]) -> bool:
    """Whether the figure takes every option in the query (the command line refuses others)."""
    options = {dest for _, dest, _ in OPTIONS.get(name, [])}
    return set(query) <= options | set(DIMENSIONS)


FILTERED = [
    (name, query, arguments)
    for name in sorted(FIGURES)
    for query, arguments in CASES
    if applies(name, query)
]


@pytest.mark.parametrize(("name", "query", "arguments"), FILTERED)
async def test_filters_and_options_agree_with_carebot_report(
    browsers: Any,
    capsysbinary: pytest.CaptureFixture[bytes],
    name: str,
    query: dict[str, str],
    arguments: list[str],
) -> None:
    manager = await browsers("manager")
    exported = await fetch(manager, f"/dashboard/export/{name}", query)
    assert exported == report(capsysbinary, name, *arguments, "--format", "csv")
    shown = await fetch(manager, f"/api/dashboard/{name}", query)
    printed = report(capsysbinary, name, *arguments, "--format", "json")
    assert json.loads(shown) == json.loads(printed)
