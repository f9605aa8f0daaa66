"""shared.db against real PostgreSQL: an IN list of constants keeps a partial index usable
by a prepared statement's generic plan (asyncpg prepares every statement); a hand-written
statement of the unit of work commits, rolls back, nudges the relay and fails like the rest."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, select

from shared.db import UnitOfWork, create_engine, in_literal, session_factory
from shared.outage import database_unavailable
from shared.testing import Infra, generic_plan, unique

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


async def test_a_hand_written_statement_commits_rolls_back_and_nudges_with_the_unit_of_work(infra: Infra):
    engine = create_engine(infra.postgres_url.replace("postgresql://", "postgresql+asyncpg://", 1), pool_size=1)
    table = unique("uow_rows")
    insert = f"INSERT INTO {table} SELECT unnest($1::int[]) RETURNING n"
    nudges: list[str] = []
    sessions = session_factory(engine)

    def uow() -> UnitOfWork:
        return UnitOfWork(sessions, on_commit=lambda: nudges.append("relay"))

    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"CREATE TABLE {table} (n int)")
        async with uow() as work:  # left without a commit: rolled back, no nudge
            assert sorted(row[0] for row in await work.execute_sql(insert, [[1, 2]], writes_outbox=True)) == [1, 2]
        assert nudges == []
        async with uow() as work:
            await work.execute_sql(insert, [[3]], writes_outbox=True)
            await work.commit()
        assert nudges == ["relay"]  # after the commit, as for emitted events
        async with uow() as work:  # no outbox rows written: nothing to tell the relay
            await work.execute_sql(insert, [[4]])
            await work.commit()
        assert nudges == ["relay"]
        async with engine.connect() as conn:
            assert [row[0] for row in await conn.exec_driver_sql(f"SELECT n FROM {table} ORDER BY n")] == [3, 4]

        # Run alone, the statement is the whole unit of work: durable when it returns (no
        # BEGIN to roll back), the only write allowed, and the commit still nudges.
        async with uow() as work:
            await work.execute_sql(insert, [[10]], writes_outbox=True, alone=True)
            async with engine.connect() as conn:  # another session sees it before the commit
                assert (await conn.exec_driver_sql(f"SELECT count(*) FROM {table} WHERE n = 10")).scalar() == 1
            with pytest.raises(RuntimeError, match="only one"):
                await work.execute_sql(insert, [[11]])
            await work.commit()
        assert nudges == ["relay", "relay"]
        async with uow() as work:  # not after another write: that one would be committed with it
            await work.execute_sql(insert, [[12]])
            with pytest.raises(RuntimeError, match="only one"):
                await work.execute_sql(insert, [[13]], alone=True)
        async with engine.begin() as conn:
            assert [row[0] for row in await conn.exec_driver_sql(f"DELETE FROM {table} WHERE n >= 10 RETURNING n")] == [10]

        # A connection the server drops under it fails as an outage (a 503 at the edge), and
        # the engine throws it away: the next unit of work gets a sound one.
        with pytest.raises(Exception) as failed:
            async with uow() as work:
                ((pid,),) = await work.execute_sql("SELECT pg_backend_pid()")
                killer = await asyncpg.connect(infra.postgres_url)
                try:
                    await killer.execute("SELECT pg_terminate_backend($1)", pid)
                finally:
                    await killer.close()
                await work.execute_sql(insert, [[5]], writes_outbox=True)
        assert database_unavailable(failed.value), repr(failed.value)
        async with uow() as work:
            await work.execute_sql(insert, [[6]])
            await work.commit()
        async with engine.connect() as conn:
            assert [row[0] for row in await conn.exec_driver_sql(f"SELECT n FROM {table} ORDER BY n")] == [3, 4, 6]

        # Run alone the statement goes straight to the driver on a pooled connection: one the
        # server dropped fails as an outage too, and is thrown away (the pool holds just one).
        async with uow() as work:
            ((pid,),) = await work.execute_sql("SELECT pg_backend_pid()", alone=True)
        killer = await asyncpg.connect(infra.postgres_url)
        try:
            await killer.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await killer.close()
        with pytest.raises(Exception) as failed:
            async with uow() as work:
                await work.execute_sql(insert, [[7]], writes_outbox=True, alone=True)
        assert database_unavailable(failed.value), repr(failed.value)
        async with uow() as work:
            assert [row["n"] for row in await work.execute_sql(insert, [[8]], alone=True)] == [8]
        async with uow() as work:
            ((again,),) = await work.execute_sql("SELECT pg_backend_pid()", alone=True)
        assert again != pid
        async with engine.connect() as conn:
            assert [row[0] for row in await conn.exec_driver_sql(f"SELECT n FROM {table} ORDER BY n")] == [3, 4, 6, 8]
    finally:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        await engine.dispose()
