"""The directory's table (its own database): every version of the org document.

A change never updates a row: it inserts the next version, so the history is the table
and the primary key is the optimistic lock (two changes on the same version: one wins).
"""

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

org_versions = Table(
    "org_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("document", JSONB, nullable=False),
    Column("changed_by", String(128), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("summary", Text, nullable=False),
)

# The national holiday schedule of a year (节假日安排), loaded by an administrator: platform
# reference data like the org document, published on the topic holiday-tables (shared.holidays)
# and followed by every service that counts working days. Loading a year again replaces it.
holiday_tables = Table(
    "holiday_tables",
    metadata,
    Column("year", Integer, primary_key=True, autoincrement=False),
    Column("holidays", JSONB, nullable=False),
    Column("workdays", JSONB, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("loaded_by", String(128), nullable=False),
)
