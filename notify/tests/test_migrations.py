"""Notify's migrations against real PostgreSQL: callback tasks stored before a revision keep
their meaning after it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from alembic import command
from sqlalchemy import Connection, text

import notify
from shared.callback import callback_window
from shared.db import create_engine
from shared.migrate import alembic_config, ensure_database
from shared.testing import Infra, unique
from shared.workdays import LOCAL, WorkingCalendar

VERSIONS = Path(notify.__file__).parent / "migrations" / "versions"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=LOCAL)


async def test_a_stored_callback_task_gets_its_window(infra: Infra) -> None:
    # Before notify_0003 a task stored one time, due_at: the hour on the callback day when
    # calling starts. It becomes opens_at, and due_at the end of that day, as shared.callback gives.
    url = infra.database_url(unique("notify")).replace("postgresql://", "postgresql+asyncpg://", 1)
    await ensure_database(url)
    engine = create_engine(url)

    def upgrade(conn: Connection, target: str) -> None:
        command.upgrade(alembic_config(VERSIONS, conn), target)

    stored = {
        "first": (local(2026, 9, 30, 16), local(2026, 10, 8, 9)),  # closed on National Day's eve
        "retried": (local(2026, 9, 30, 16), local(2026, 10, 10, 9)),  # an unreachable try moved it to 调休 Saturday
    }
    try:
        async with engine.begin() as conn:
            await conn.run_sync(upgrade, "notify_0002")
            for case_id, (closed_at, due_at) in stored.items():
                await conn.execute(
                    text("INSERT INTO callback_tasks (case_id, round, closed_at, due_at) VALUES (:c, 0, :closed, :due)"),
                    {"c": case_id, "closed": closed_at, "due": due_at},
                )
            await conn.run_sync(upgrade, "heads")
            rows = (await conn.execute(text("SELECT case_id, opens_at, due_at FROM callback_tasks"))).all()
    finally:
        await engine.dispose()

    windows = {case_id: (opens_at, due_at) for case_id, opens_at, due_at in rows}
    first = callback_window(WorkingCalendar(), stored["first"][0])
    assert windows["first"] == (first.opens_at, first.due_at)
    assert windows["retried"] == (local(2026, 10, 10, 9), local(2026, 10, 11))
