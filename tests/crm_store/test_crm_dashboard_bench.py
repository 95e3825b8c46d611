"""The dashboard benchmark and migration 0012 on real databases (small sizes)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
from crm_helpers import BACKENDS
from sqlalchemy import func, inspect, select

from bot.bench import dashboard_timings
from crm_store import demo
from crm_store.analytics import refresh_customer_metrics
from crm_store.clock import fixed
from crm_store.dashboard import FIGURES
from crm_store.dashboard.summaries import summary_is_current
from crm_store.db import make_engine, session_scope
from crm_store.errors import InvalidInput
from crm_store.migrate import downgrade, upgrade
from crm_store.models import CustomerSummary

SEEDED_AT = datetime(2026, 11, 2, 2, 0, tzinfo=timezone.utc)


@pytest.mark.postgres
def test_the_benchmark_fills_what_the_seed_lacks_and_times_every_figure(
    new_database_url: Callable[[str], str],
) -> None:
    url = new_database_url("postgresql")
    upgrade(url)
    engine = make_engine(url)
    try:
        demo.seed(engine, customers=400, clock=fixed(SEEDED_AT))
        with session_scope(engine) as session:
            refresh_customer_metrics(session, clock=fixed(SEEDED_AT))
        result = dashboard_timings.run(engine, now=SEEDED_AT)
        with pytest.raises(InvalidInput):
            dashboard_timings.fill(engine, now=SEEDED_AT)
        with session_scope(engine) as session:
            assert summary_is_current(session)
    finally:
        engine.dispose()
    assert result.added["handoffs"] > 0 and result.added["care_messages"] > 0
    assert result.added["customer_summary"] > 0
    views = dashboard_timings.views(SEEDED_AT)
    assert {(t.view, t.figure) for t in result.timings} == {
        (view, figure) for view in views for figure in FIGURES
    }
    assert all(t.median_ms >= 0 for t in result.timings)
    assert result.page_ms("90 days", "bot") == sum(
        t.median_ms
        for t in result.timings
        if t.view == "90 days" and t.figure in dashboard_timings.PAGES["bot"]
    )


def test_the_benchmark_refuses_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/crm.db")
    try:
        assert dashboard_timings.run_on_postgresql(engine) is None
        with pytest.raises(InvalidInput):
            dashboard_timings.fill(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_0012_fills_the_summary_from_the_metrics_there_are_and_downgrades(
    backend: str, new_database_url: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = new_database_url(backend)
    upgrade(url, "0011")
    monkeypatch.setattr(demo.fixed, "DEMO_REST_USERS", {})  # rest_user identities came with 0014
    # daily_cap came with 0017
    monkeypatch.setattr(demo.campaigns, "ensure_demo_campaigns", lambda *_: None)
    engine = make_engine(url)
    try:
        demo.seed(engine, customers=50, clock=fixed(SEEDED_AT))
        with session_scope(engine) as session:
            refresh_customer_metrics(session, clock=fixed(SEEDED_AT))
        upgrade(url, "0012")
        with session_scope(engine) as session:
            assert summary_is_current(session)
            assert session.scalar(select(func.sum(CustomerSummary.customers))) == 50
        downgrade(url, "0011")
        assert "customer_summary" not in inspect(engine).get_table_names()
        columns = {c["name"] for c in inspect(engine).get_columns("care_messages")}
        assert "replied_at" not in columns and "outcome" in columns
    finally:
        engine.dispose()
