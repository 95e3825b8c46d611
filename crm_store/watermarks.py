"""How far a reader of another system's ordered records has got (the log consumer reconciling
from Rasa's tracker store, bot/reconcile.py)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.clock import Clock, utcnow
from crm_store.models import ReconcileWatermark as WatermarkRow
from crm_store.validation import check_text

SOURCE_LENGTH = 255


def get_watermark(session: Session, *, source: str) -> int:
    """The id read up to in `source`; 0 before the first time."""
    row = session.get(WatermarkRow, check_text(source, "source", SOURCE_LENGTH))
    return int(row.event_id) if row is not None else 0


def set_watermark(session: Session, *, source: str, event_id: int, clock: Clock = utcnow) -> int:
    """Moves the watermark of `source` forward to `event_id` (never back); the stored value."""
    source = check_text(source, "source", SOURCE_LENGTH)
    row = session.get(WatermarkRow, source)
    if row is None:
        row = WatermarkRow(source=source, event_id=event_id, updated_at=clock())
        if try_insert(session, row):
            return event_id
        row = session.get(WatermarkRow, source)
    if event_id > row.event_id:
        row.event_id = event_id
        row.updated_at = clock()
        session.flush()
    return int(row.event_id)
