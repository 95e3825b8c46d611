"""What agents keep beside a conversation: internal notes (never sent) and saved quick replies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from crm_store._unique import try_insert
from crm_store.audit import record_audit
from crm_store.clock import Clock, utcnow
from crm_store.errors import Conflict, NotFound
from crm_store.models import Handoff as HandoffRow
from crm_store.models import HandoffNote as NoteRow
from crm_store.models import ReplySnippet as SnippetRow
from crm_store.validation import check_text

NOTE_LENGTH = 2000
SNIPPET_LENGTH = 1000


@dataclass(frozen=True)
class Note:
    id: int
    handoff_id: int
    author_id: int | None
    text: str
    created_at: datetime


@dataclass(frozen=True)
class Snippet:
    id: int
    title: str
    text: str
    created_at: datetime


def add_note(
    session: Session, *, handoff_id: int, author_id: int, text: str, clock: Clock = utcnow
) -> Note:
    if session.get(HandoffRow, handoff_id) is None:
        raise NotFound(f"no handoff {handoff_id}")
    row = NoteRow(
        handoff_id=handoff_id,
        author_id=author_id,
        text=check_text(text, "note", NOTE_LENGTH),
        created_at=clock(),
    )
    session.add(row)
    session.flush()
    record_audit(
        session,
        actor=f"staff:{author_id}",
        action="add_note",
        entity="handoff",
        entity_id=handoff_id,
        changes={"note_id": row.id},
        clock=clock,
    )
    return Note(row.id, row.handoff_id, row.author_id, row.text, row.created_at)


def list_notes(session: Session, *, handoff_id: int) -> list[Note]:
    query = select(NoteRow).where(NoteRow.handoff_id == handoff_id).order_by(NoteRow.id)
    return [
        Note(row.id, row.handoff_id, row.author_id, row.text, row.created_at)
        for row in session.scalars(query)
    ]


def create_snippet(
    session: Session, *, title: str, text: str, author_id: int, clock: Clock = utcnow
) -> Snippet:
    row = SnippetRow(
        title=check_text(title, "title", 64),
        text=check_text(text, "snippet", SNIPPET_LENGTH),
        created_by=author_id,
        created_at=clock(),
    )
    if not try_insert(session, row):
        raise Conflict(f"a snippet titled {row.title} exists")
    record_audit(
        session,
        actor=f"staff:{author_id}",
        action="create_snippet",
        entity="reply_snippet",
        entity_id=row.id,
        changes={"title": [None, row.title]},
        clock=clock,
    )
    return Snippet(row.id, row.title, row.text, row.created_at)


def list_snippets(session: Session) -> list[Snippet]:
    query = select(SnippetRow).order_by(SnippetRow.title)
    return [Snippet(row.id, row.title, row.text, row.created_at) for row in session.scalars(query)]


def delete_snippet(
    session: Session, *, snippet_id: int, actor_id: int, clock: Clock = utcnow
) -> None:
    result = session.execute(delete(SnippetRow).where(SnippetRow.id == snippet_id))
    if result.rowcount == 0:
        raise NotFound(f"no snippet {snippet_id}")
    record_audit(
        session,
        actor=f"staff:{actor_id}",
        action="delete_snippet",
        entity="reply_snippet",
        entity_id=snippet_id,
        clock=clock,
    )
