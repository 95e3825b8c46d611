"""One cluster (tests/cluster/cluster.py) for the whole cluster suite, torn down at the end;
the measurements the tests record are printed at the end of the run and kept in
var/results/cluster.json (docs/benchmarks.md, section Cluster)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import PROJECT_DIR
from tests.bot.test_log_consumer import rabbitmq_is_up
from tests.cluster.cluster import Cluster, build, teardown
from tests.cluster.netns import can_make_namespaces

MEASURED: dict[str, Any] = {}
RESULTS = PROJECT_DIR / "var" / "results" / "cluster.json"
WORK = PROJECT_DIR / "var" / "cluster"  # the last run's logs and settings, kept to read


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    why = can_make_namespaces()
    if why is None and not rabbitmq_is_up():
        why = "RabbitMQ is not running on 127.0.0.1:5672"
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the cluster cannot be built: {why}")
        pytest.skip(why)
    from bot.training import ensure_model

    model = ensure_model(PROJECT_DIR)
    # not pytest's tmp_path: other pytest sessions on the machine prune those while we run
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True, mode=0o700)
    built = build(WORK, model)
    try:
        yield built
    finally:
        teardown(built)


@pytest.fixture(scope="session")
def measured() -> Iterator[dict[str, Any]]:
    """What the tests measured, by name; written to var/results/cluster.json at the end."""
    yield MEASURED
    if MEASURED:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(MEASURED, indent=2, ensure_ascii=False))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if MEASURED:
        terminalreporter.section("cluster measurements")
        for name, value in MEASURED.items():
            terminalreporter.write_line(f"{name}: {value}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
