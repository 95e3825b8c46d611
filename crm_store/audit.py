"""Who changed what: staff and automated writers append here in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_store.clock import Clock, utcnow
from crm_store.masking import mask_value
from crm_store.models import AuditEntry as AuditRow
from crm_store.validation import check_text


@dataclass(frozen=True)
class AuditEntry:
    id: int
    actor: str
    action: str
    entity: str
    entity_id: str
    changes: dict[str, Any]
    occurred_at: datetime


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return value


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """{field: [old, new]} for the fields whose value changed, JSON-ready."""
    return {
        key: [_jsonable(before.get(key)), _jsonable(value)]
        for key, value in after.items()
        if before.get(key) != value
    }


def record_audit(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: str | int,
    changes: Mapping[str, Any] | None = None,
    clock: Clock = utcnow,
) -> None:
    """Append one entry. Phone numbers and other personal values in `changes` are stored
    masked (`138****8000`): the audit log says that a phone changed, not what it is."""
    session.add(
        AuditRow(
            actor=check_text(actor, "actor", 64),
            action=check_text(action, "action", 64),
            entity=entity,
            entity_id=str(entity_id),
            changes=mask_value(dict(changes or {})),
            occurred_at=clock(),
        )
    )


def list_audit_entries(
    session: Session,
    *,
    entity: str | None = None,
    entity_id: str | int | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    query = select(AuditRow).order_by(AuditRow.occurred_at.desc(), AuditRow.id.desc())
    if entity is not None:
        query = query.where(AuditRow.entity == entity)
    if entity_id is not None:
        query = query.where(AuditRow.entity_id == str(entity_id))
    if actor is not None:
        query = query.where(AuditRow.actor == actor)
    return [_record(row) for row in session.scalars(query.limit(limit))]


def _record(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        actor=row.actor,
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        changes=dict(row.changes),
        occurred_at=row.occurred_at,
    )
