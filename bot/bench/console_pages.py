"""Timings of the manager dashboard's pages on a big CRM (docs/benchmarks.md).

python -m bot.bench.console_pages URL   (URL: e.g. the 1,000,000-customer demo on PostgreSQL)

Each page is built as its handler builds it: the query string parsed, every figure of the page
read in one transaction (`read_page`), the charts and tables made and dashboard.html rendered.
The HTTP round trip and the session check (one indexed read) are left out: neither depends on
the data's size. Reads only: it signs nobody in and writes nothing. One warm-up, then the median
of REPEAT runs per page and view.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import timedelta
from typing import Any

from bot.console.app import templates
from bot.console.dashboard import VIEWS, business_today, page_values, parse_query, read_page
from bot.console.sessions import new_session
from crm_store.clock import utcnow
from crm_store.db import make_engine, session_scope

REPEAT = 5
FILTERS: dict[str, dict[str, str]] = {  # the views bot.bench.dashboard_timings times, as URLs
    "90 days": {},
    "365 days": {"from": "-364"},
    "90 days, 金卡 champions": {"tier": "金卡", "segment": "champions"},
    "90 days, wechat, agent": {"channel": "wechat", "agent": "agent"},
}


def query_string(view: dict[str, str]) -> dict[str, str]:
    """A relative `from` (days before today) made a date, as a manager would pick it."""
    today = business_today(utcnow)
    if view.get("from", "").startswith("-"):
        view = {**view, "from": (today + timedelta(days=int(view["from"]))).isoformat()}
    return view


def page_ms(engine: Any, name: str, args: dict[str, str]) -> float:
    env = templates()
    session = new_session(utcnow(), timedelta(hours=1), 1, "manager", "经理")
    timings = []
    for _ in range(REPEAT + 1):
        started = time.perf_counter()
        query = parse_query(args, business_today(utcnow))
        with session_scope(engine) as db:
            page = read_page(db, VIEWS[name], query, utcnow)
        env.get_template("dashboard.html").render(session=session, **page_values(name, page, query))
        timings.append(time.perf_counter() - started)
    return round(statistics.median(timings[1:]) * 1000, 1)


def main() -> None:
    engine = make_engine(sys.argv[1])
    try:
        print("| page | " + " | ".join(FILTERS) + " |")
        print("| --- |" + " --- |" * len(FILTERS))
        for name in VIEWS:
            cells = [f"{page_ms(engine, name, query_string(v)):.0f} ms" for v in FILTERS.values()]
            print(f"| {name} | " + " | ".join(cells) + " |")
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
