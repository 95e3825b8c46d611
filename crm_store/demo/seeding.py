"""Seeding: chunks generated (in a worker process for large runs) and bulk-loaded, then the
statistics, the campaigns and the offers; `ensure_demo_data` for `make run`."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from crm_store.analytics import refresh_customer_metrics
from crm_store.clock import Clock, as_utc, utcnow
from crm_store.demo import campaigns
from crm_store.demo.customers import Generator
from crm_store.demo.fixed import FIXED_CUSTOMERS, add_fixed_customers
from crm_store.demo.reference import reference_rows
from crm_store.demo.tables import BULK_TABLES, Batch, Chunk, write_chunk
from crm_store.errors import Conflict
from crm_store.models import Customer

Progress = Callable[[int, int], None]
CHUNK = 5_000
PIPELINE_MIN = 50_000  # customers; below this a worker process costs more than it saves


def customer_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(Customer.__table__)))


def seed(
    engine: Engine,
    *,
    customers: int,
    seed: int = 42,
    progress: Progress | None = None,
    clock: Clock = utcnow,
) -> int:
    """Fill an empty CRM database with `customers` customers (the 3 fixed ones included);
    the number written. Conflict if the database already has customers."""
    if customer_count(engine) > 0:
        raise Conflict("the CRM database already has customers; demo data goes into an empty one")
    return _seed_empty(engine, customers, seed, progress, clock)


def _seed_empty(
    engine: Engine, customers: int, rng_seed: int, progress: Progress | None, clock: Clock
) -> int:
    total = max(customers, FIXED_CUSTOMERS)
    now = as_utc(clock()).replace(tzinfo=None)  # naive UTC: cheaper to generate and store
    produce = _in_a_worker if total - FIXED_CUSTOMERS >= PIPELINE_MIN else generate_chunks
    chunks = _reporting(produce(rng_seed, now, total), progress, total)
    if engine.dialect.name == "postgresql":
        _load_postgresql(engine, chunks)
    else:
        _load_sqlite(engine, chunks)
    _refresh_statistics(engine)
    campaigns.ensure_demo_campaigns(engine, clock)
    campaigns.add_public_offers(engine, clock)
    _report(progress, total, total)
    return total


def _reporting(
    chunks: Iterator[tuple[int, Chunk]], progress: Progress | None, total: int
) -> Iterator[Chunk]:
    """The chunks, reporting each one written; the end is reported once the seed is complete
    (the keys and statistics after the last chunk take a while on a large database)."""
    for done, chunk in chunks:
        yield chunk
        if done < total:
            _report(progress, done, total)


def _load_sqlite(engine: Engine, chunks: Iterator[Chunk]) -> None:
    """A transaction per chunk keeps SQLite's write-ahead log small."""
    for chunk in chunks:
        with engine.begin() as connection:
            write_chunk(connection, chunk)


def _load_postgresql(engine: Engine, chunks: Iterator[Chunk]) -> None:
    """One transaction, with the keys and indexes of the generated tables built once at the end
    from all their rows instead of row by row (that was two thirds of the writing time). A
    failure rolls everything back, so no one ever sees the tables without their keys."""
    with engine.begin() as connection:
        with _keys_rebuilt(connection):
            for chunk in chunks:
                write_chunk(connection, chunk)
        _advance_sequences(connection)


BUILD_MEMORY = "512MB"  # per sort while building an index or checking a foreign key
# (drop, create) statements, in dropping order: foreign keys into or out of the bulk tables,
# their plain indexes, then their primary keys and unique constraints. The definitions come from
# the catalog (no SQLAlchemy construct reads them), so they come back exactly as they were.
KEYS_DDL = text(
    """
    SELECT drop_ddl, create_ddl FROM (
        SELECT 1 AS step, conname::text AS name,
            format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname) AS drop_ddl,
            format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
                   pg_get_constraintdef(oid)) AS create_ddl
        FROM pg_constraint
        WHERE contype = 'f' AND (conrelid = ANY(CAST(:tables AS regclass[]))
                                 OR confrelid = ANY(CAST(:tables AS regclass[])))
        UNION ALL
        SELECT 2, indexrelid::regclass::text, format('DROP INDEX %s', indexrelid::regclass),
            pg_get_indexdef(indexrelid)
        FROM pg_index
        WHERE indrelid = ANY(CAST(:tables AS regclass[])) AND NOT EXISTS (
            SELECT 1 FROM pg_constraint
            WHERE conindid = indexrelid AND contype IN ('p', 'u', 'x'))
        UNION ALL
        SELECT 3, conname::text,
            format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname),
            format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
                   pg_get_constraintdef(oid))
        FROM pg_constraint
        WHERE contype IN ('p', 'u') AND conrelid = ANY(CAST(:tables AS regclass[]))
    ) AS ddl
    ORDER BY step, name
    """
)


@contextmanager
def _keys_rebuilt(connection: Connection) -> Iterator[None]:
    """Drops the bulk tables' keys, indexes and foreign keys; re-creates them on leaving."""
    statements = connection.execute(KEYS_DDL, {"tables": BULK_TABLES}).all()
    for drop, _ in statements:
        connection.exec_driver_sql(drop)
    yield
    for setting in ("maintenance_work_mem", "work_mem"):
        connection.execute(select(func.set_config(setting, BUILD_MEMORY, True)))
    for _, create in reversed(statements):
        connection.exec_driver_sql(create)


def generate_chunks(rng_seed: int, now: datetime, total: int) -> Iterator[tuple[int, Chunk]]:
    """(customers done, rows) chunk by chunk; the same arguments give the same rows."""
    gen = Generator(rng_seed, now)
    first = Batch()
    reference_rows(first, now)
    add_fixed_customers(first, gen)
    yield FIXED_CUSTOMERS, first.freeze()
    for start in range(FIXED_CUSTOMERS + 1, total + 1, CHUNK):
        stop = min(start + CHUNK, total + 1)
        batch = Batch()
        for customer_id in range(start, stop):
            gen.customer(batch, customer_id)
        yield stop - 1, batch.freeze()


def _in_a_worker(rng_seed: int, now: datetime, total: int) -> Iterator[tuple[int, Chunk]]:
    """generate_chunks() in another process, so generating and writing use both cores."""
    context = multiprocessing.get_context("spawn")  # no fork of open connections or threads
    queue: Any = context.Queue(maxsize=4)
    worker = context.Process(target=_produce, args=(rng_seed, now, total, queue), daemon=True)
    worker.start()
    try:
        while (item := queue.get(timeout=600)) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        worker.join(timeout=5)
        if worker.is_alive():
            worker.terminate()


def _produce(rng_seed: int, now: datetime, total: int, queue: Any) -> None:
    try:
        for item in generate_chunks(rng_seed, now, total):
            queue.put(item)
        queue.put(None)
    except BaseException as error:  # handed to the parent, which raises it
        queue.put(error)


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _advance_sequences(connection: Connection) -> None:
    """PostgreSQL sequences do not see explicit ids; move the customers' one past them."""
    top = connection.scalar(select(func.max(Customer.__table__.c.id)))
    sequence = func.pg_get_serial_sequence("customers", "id")
    connection.execute(select(func.setval(sequence, top)))


def _refresh_statistics(engine: Engine) -> None:
    """Bulk-loaded tables have no planner statistics yet; without them PostgreSQL plans the
    analytics for 200-row tables. ANALYZE has no SQLAlchemy construct."""
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA analysis_limit = 1000")  # sample, do not scan
        connection.exec_driver_sql("ANALYZE")


def ensure_demo_data(
    engine: Engine, *, customers: int = 2_000, seed: int = 42, clock: Clock = utcnow
) -> int:
    """Seed only an empty database (for `make run` on every start); the number written."""
    if customer_count(engine) > 0:
        return 0
    written = _seed_empty(engine, customers, seed, None, clock)
    with Session(engine, future=True) as session, session.begin():
        refresh_customer_metrics(session, clock=clock)  # the win-back and follow-up campaigns
    return written
