"""shared.db against real PostgreSQL: an IN list of constants keeps a partial index usable
by a prepared statement's generic plan (asyncpg prepares every statement), and the
services' engines plan each run, so a look-up prepared on an empty table uses its index
once the table has grown."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, select

from shared.db import create_engine, in_literal
from shared.testing import Infra, generic_plan

JOBS = Table(
    "plan_jobs", MetaData(),
    Column("id", BigInteger, primary_key=True), Column("state", Text, nullable=False),
    Column("due", DateTime(timezone=True), nullable=False),
)  # fmt: skip


async def test_a_partial_index_serves_a_generic_plan_only_when_the_states_are_constants(infra: Infra):
    conn = await asyncpg.connect(infra.postgres_url)
    try:
        # A queue's shape: thousands of finished rows, a few waiting, an index on the waiting ones.
        await conn.execute("CREATE TEMP TABLE plan_jobs (id bigserial PRIMARY KEY, state text NOT NULL, due timestamptz NOT NULL)")
        await conn.execute("INSERT INTO plan_jobs (state, due) SELECT CASE WHEN i % 1000 = 0 THEN 'queued' ELSE 'done' END, "
                           "now() - i * interval '1 minute' FROM generate_series(1, 5000) i")  # fmt: skip
        await conn.execute("CREATE INDEX plan_jobs_due ON plan_jobs (due, id) WHERE state IN ('queued', 'failed')")
        await conn.execute("ANALYZE plan_jobs")

        def due(states):
            return select(JOBS.c.id).where(states, JOBS.c.due <= datetime.now(UTC)).order_by(JOBS.c.due).limit(10)

        constants = await generic_plan(conn, due(in_literal(JOBS.c.state, ("queued", "failed"))))
        assert "plan_jobs_due" in constants and "Seq Scan" not in constants, constants
        # With bound states the planner cannot prove the index's predicate for every value.
        bound = await generic_plan(conn, due(JOBS.c.state.in_(("queued", "failed"))))
        assert "plan_jobs_due" not in bound, bound
        assert (await conn.fetchval("SELECT count(*) FROM plan_jobs WHERE state IN ('queued', 'failed')")) == 5
    finally:
        await conn.close()


async def _plan_after_growth(conn) -> str:
    """A look-up by key, in key order (as SLA locks a batch's clocks), run six times on an
    empty table, then explained once the table holds 20,000 rows with no ANALYZE in between:
    what a fresh service's first minutes look like."""
    # Shaped like SLA's clocks (the width matters: it is how many rows the planner guesses
    # an empty table's pages hold).
    await conn.execute("CREATE TEMP TABLE grown (id varchar(200) PRIMARY KEY, case_id varchar(64) NOT NULL, "
                       "due_at timestamptz, pad text)")  # fmt: skip
    await conn.execute("CREATE INDEX grown_case ON grown (case_id)")
    await conn.execute("PREPARE by_case AS SELECT id FROM grown WHERE case_id = ANY($1::text[]) ORDER BY id")
    for _ in range(6):
        await conn.execute("EXECUTE by_case('{c1,c2}')")
    await conn.execute("INSERT INTO grown SELECT 'k' || i, 'c' || (i / 6), now(), repeat('x', 100) "
                       "FROM generate_series(1, 20000) i")  # fmt: skip
    return "\n".join(row[0] for row in await conn.fetch("EXPLAIN EXECUTE by_case('{c1,c2}')"))


async def test_a_services_engine_plans_a_lookup_for_the_table_it_finds_not_the_empty_one(infra: Infra):
    engine = create_engine(infra.postgres_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            planned = await _plan_after_growth(raw.driver_connection)
        assert "Bitmap Index Scan on grown_case" in planned or "Index Scan using grown_case" in planned, planned
    finally:
        await engine.dispose()
    # A connection with PostgreSQL's default keeps the plan made for no rows: the whole table.
    conn = await asyncpg.connect(infra.postgres_url)
    try:
        kept = await _plan_after_growth(conn)
        assert "Seq Scan on grown" in kept and "grown_case" not in kept, kept
    finally:
        await conn.close()
