"""shared.db against real PostgreSQL: an IN list of constants keeps a partial index usable
by a prepared statement's generic plan (asyncpg prepares every statement)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, select

from shared.db import in_literal
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
