"""Intake's tables (its own database)."""

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text, func
from sqlalchemy.dialects.postgresql import UUID

metadata = MetaData()

appeals = Table(
    "appeals",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("tracking_no", String(32), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(24), nullable=False),
    Column("idempotency_key", String(128), unique=True),
    Column("request_hash", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The citizen's timeline, fed from the topic: what every service did with the case.
timeline = Table(
    "timeline",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("case_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("label", Text, nullable=False),
    Column("detail", Text),
    Index("timeline_case", "case_id", "occurred_at"),
)
