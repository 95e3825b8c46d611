"""One member's data across the running system: erasure, export and retention (issue 15,
docs/personal-data.md). crm_store erases and exports the CRM; this module adds what lives
outside it: Rasa's tracker store and, in the demo, the WeChat simulator's records.

Erasure while the system runs goes through Rasa's HTTP API (`PUT .../tracker/events` with an
empty list, under Rasa's conversation lock; bot/tracker_store.py turns that into a delete).
When no Rasa server answers, the tracker database is edited directly; so is a conversation whose
id Rasa's HTTP API cannot name (bot/rasa_api.py: a space or a Chinese character in a web user
id), where the request would empty another conversation. The trackers are
erased before the CRM (whose identities say which trackers are the member's, so a failure can
be retried), and once more afterwards, for a turn that arrived in between.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Engine

from bot.rasa_api import RasaApi, RasaUnreachable, addressable
from bot.tracker_store import TrackerPlace, erase_trackers, purge_idle_trackers
from crm_store.audit import record_audit
from crm_store.clock import Clock, utcnow
from crm_store.db import session_scope
from crm_store.personal_data import (
    ErasureTargets,
    RetentionPolicy,
    apply_retention,
    erasure_targets,
    export_customer,
    forget_customer,
)

log = logging.getLogger(__name__)
TIMEOUT_S = 10


@dataclass(frozen=True)
class Places:
    """Where the running system keeps conversations outside the CRM."""

    tracker_db: TrackerPlace  # the tracker store's URL (or the embedded SQLite file)
    rasa_url: str | None = None  # None: Rasa is not running, edit the tracker file
    api_token: str = ""
    wechat_sim_url: str | None = None  # the demo's WeChat simulator


@dataclass
class ForgetReport:
    customer_id: int
    crm: dict[str, int] = field(default_factory=dict)
    trackers: int = 0
    wechat_sim_records: int = 0
    notes: list[str] = field(default_factory=list)


def _erase_through_rasa(rasa_url: str, token: str, sender_ids: Iterable[str]) -> int:
    """Empty each tracker through the running server; how many conversations. Raises
    bot.rasa_api.RasaRefused when it answers with an error."""
    api = RasaApi(rasa_url, token, timeout_s=TIMEOUT_S)
    senders = sorted(set(sender_ids))
    for sender in senders:
        api.replace_events(sender, [])
    return len(senders)


def erase_conversations(places: Places, sender_ids: Iterable[str]) -> int:
    """Every tracker of these senders, through Rasa when it runs, else in the file (as is a
    conversation Rasa's HTTP API cannot name)."""
    senders = list(sender_ids)
    if not places.rasa_url:
        return erase_trackers(places.tracker_db, senders)
    unnamed = [sender for sender in senders if not addressable(sender)]
    try:
        erased = _erase_through_rasa(places.rasa_url, places.api_token, set(senders) - set(unnamed))
    except RasaUnreachable as error:
        log.info("%s: erasing in the tracker file", error)
        return erase_trackers(places.tracker_db, senders)
    return erased + (erase_trackers(places.tracker_db, unnamed) if unnamed else 0)


def _forget_in_wechat_sim(url: str, openids: Iterable[str]) -> int:
    erased = 0
    for openid in openids:
        request = urllib.request.Request(
            f"{url}/sim/api/users/{urllib.parse.quote(openid, safe='')}", method="DELETE"
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            erased += int(json.load(answer).get("erased_records", 0))
    return erased


def forget(
    engine: Engine, places: Places, *, customer_id: int, actor: str, clock: Clock = utcnow
) -> ForgetReport:
    """`carebot forget`: the member's personal data out of the CRM, Rasa and the simulator.
    Raises crm_store's NotFound for an unknown customer."""
    with session_scope(engine) as session:
        targets = erasure_targets(session, customer_id=customer_id)
    report = ForgetReport(customer_id)
    report.trackers = erase_conversations(places, targets.sender_ids)
    with session_scope(engine) as session:
        report.crm = forget_customer(
            session, customer_id=customer_id, actor=actor, targets=targets, clock=clock
        ).counts
    report.trackers += erase_conversations(places, targets.sender_ids)
    report.wechat_sim_records = _wechat_sim(places, targets, report)
    return report


def _wechat_sim(places: Places, targets: ErasureTargets, report: ForgetReport) -> int:
    if not places.wechat_sim_url or not targets.openids:
        return 0
    try:
        return _forget_in_wechat_sim(places.wechat_sim_url, targets.openids)
    except (urllib.error.URLError, OSError, ValueError) as error:
        report.notes.append(f"WeChat simulator not reached ({type(error).__name__}): it keeps")
        report.notes.append("its records only in memory; they go when it stops")
        return 0


def export(engine: Engine, *, customer_id: int, actor: str, clock: Clock = utcnow) -> Any:
    """`carebot export-customer`: everything the CRM holds about the member; audited."""
    with session_scope(engine) as session:
        document = export_customer(session, customer_id=customer_id)
        record_audit(
            session,
            actor=actor,
            action="export_customer",
            entity="customer",
            entity_id=customer_id,
            clock=clock,
        )
    return document


def run_retention(
    engine: Engine,
    tracker_db: TrackerPlace | None,
    policy: RetentionPolicy,
    *,
    clock: Clock = utcnow,
) -> dict[str, int]:
    """`carebot retention run` and the scheduler's daily job: the CRM's periods, then Rasa's
    transcripts of conversations idle for longer than `transcript_days` (in `tracker_db`)."""
    with session_scope(engine) as session:
        counts = apply_retention(session, policy=policy, clock=clock)
    if tracker_db is not None:
        idle_before = clock() - timedelta(days=policy.transcript_days)
        counts["transcripts"] = purge_idle_trackers(tracker_db, idle_before=idle_before)
    return counts


def places_from(settings: Any, env: Mapping[str, str], *, rasa_running: bool = True) -> Places:
    """The places of the system these settings describe."""
    sim = None if env.get("CAREBOT_WECHAT_APP_ID") else settings.wechat_sim_url
    return Places(
        tracker_db=settings.tracker_store_url,
        rasa_url=settings.rasa_url if rasa_running else None,
        api_token=settings.api_token,
        wechat_sim_url=sim,
    )
