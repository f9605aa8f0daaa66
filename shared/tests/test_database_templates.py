"""The suite's template databases (shared.testing.DatabaseTemplates): a service started on a
copy must hold exactly what its migrations make from an empty database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.migrate import ensure_database, migrate
from shared.testing import DatabaseTemplates, Infra, unique

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = [ROOT / s / "migrations" / "versions" for s in ("intake", "dispatch", "sla", "scoring", "notify", "services/directory", "services/insight")]

# Tables, columns, constraints, indexes, sequences and the alembic heads: what a service runs on.
SCHEMA = """
SELECT 'column', table_name || '.' || column_name || ':' || data_type || ':' || is_nullable || ':' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL SELECT 'constraint', conrelid::regclass::text || ':' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL SELECT 'sequence', sequence_name FROM information_schema.sequences WHERE sequence_schema = 'public'
UNION ALL SELECT 'head', version_num FROM alembic_version
"""


async def _schema(url: str) -> list[tuple[str, str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return sorted(tuple(row) for row in (await conn.execute(text(SCHEMA))).all())
    finally:
        await engine.dispose()


@pytest.mark.parametrize("versions", VERSIONS, ids=lambda p: p.parent.parent.name)
async def test_a_copy_of_the_template_is_what_the_migrations_make(infra: Infra, versions: Path) -> None:
    base = infra.database_url("x").replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0]
    migrated, copied = f"{base}/{unique('migrated')}", f"{base}/{unique('copied')}"
    await ensure_database(migrated)
    engine = create_async_engine(migrated)
    try:
        await migrate(engine, versions)
    finally:
        await engine.dispose()

    templates = DatabaseTemplates()
    await templates.ensure_database(copied)
    engine = create_async_engine(copied)
    try:
        await templates.migrate(engine, versions)
    finally:
        await engine.dispose()

    expected = await _schema(migrated)
    assert any(kind == "head" for kind, _ in expected) and any(kind == "column" for kind, _ in expected)
    assert await _schema(copied) == expected
