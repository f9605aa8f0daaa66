"""Alembic migrations, run by each service at start.

A service database holds two migration branches: the shared plumbing (outbox, inbox,
dead letters; ``shared/migrations``) and the service's own (``<service>/migrations``).
``upgrade heads`` brings both up. Replicas starting together take an advisory lock, so
only one migrates and the others find the work done.
"""

from __future__ import annotations

import re
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SHARED_VERSIONS = Path(__file__).parent / "migrations" / "versions"
MIGRATION_LOCK_KEY = 0x6A69_6D69  # "jimi"


def alembic_config(service_versions: Path, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("version_locations", f"{SHARED_VERSIONS} {service_versions}")
    cfg.set_main_option("path_separator", "space")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection, service_versions: Path) -> None:
    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
    command.upgrade(alembic_config(service_versions, connection), "heads")


async def migrate(engine: AsyncEngine, service_versions: Path) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, service_versions)


async def ensure_database(url: str) -> None:
    """Create the service's database on the server if it is missing (development convenience;
    in production the database is provisioned and this is a no-op)."""
    target = make_url(url)
    name = target.database or ""
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = (await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})).scalar()
            if not exists:
                await create_database(conn, name)
    finally:
        await admin.dispose()


async def create_database(conn: AsyncConnection, name: str, *, template: str | None = None) -> None:
    """CREATE DATABASE on an autocommit connection to the server (optionally copied from a
    template). A replica starting at the same moment may create it first: PostgreSQL says so
    either as "already exists" or as a unique violation on pg_database, depending on timing,
    so ask again rather than parse the message."""
    try:
        await conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    except Exception:
        again = (await conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})).scalar()
        if not again:
            raise
