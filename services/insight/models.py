"""Insight's own tables (its own database). The shared plumbing tables — outbox, inbox,
dead letters — come from the shared migration branch."""

from sqlalchemy import Boolean, Column, Date, DateTime, Float, Integer, MetaData, String, Table, Text, false, func
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# What insight keeps of each case, from the topic: where, what, when, who handles it, and
# how often the matter came back (merged duplicates, redo rounds).
appeals = Table(
    "appeals",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("received_on", Date),  # local day (Asia/Shanghai)
    Column("subject_class", String(64)),
    Column("county", String(64)),
    Column("township", String(64)),
    Column("village", String(64)),
    Column("grid", String(64)),
    Column("street", String(128)),
    Column("unit", String(64)),
    Column("merges", Integer, nullable=False, server_default="0"),
    Column("redo_round", Integer, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every finding given (one hotspot.detected each).
findings = Table(
    "findings",
    metadata,
    Column("finding_id", String(64), primary_key=True),
    Column("key", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("level", String(16), nullable=False),
    Column("area", String(64), nullable=False),
    Column("county", String(64)),
    Column("township", String(64)),
    Column("street", String(128)),
    Column("unit", String(64)),
    Column("subject_class", String(64), nullable=False),
    Column("detected_on", Date, nullable=False),  # the working day it was found on
    Column("window_start", Date, nullable=False),
    Column("window_end", Date, nullable=False),
    Column("count", Integer, nullable=False),
    Column("baseline", Float, nullable=False),
    Column("score", Float, nullable=False),
    Column("case_ids", JSONB, nullable=False),
    Column("explanation", Text, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The last day each pattern gave a finding (detect.cooled): locked while deciding, so two
# consumer replicas never both warn about one pattern.
finding_keys = Table(
    "finding_keys",
    metadata,
    Column("key", Text, primary_key=True),
    Column("last_on", Date),
)

# 预警信息处置: one warning per finding that warns a unit (services.insight.early_warning).
warnings = Table(
    "warnings",
    metadata,
    Column("warning_id", String(64), primary_key=True),
    Column("finding_id", String(64), nullable=False, unique=True),
    Column("unit", String(64), nullable=False),  # the unit warned
    Column("county", String(64)),
    Column("centre", String(64)),
    Column("subject_class", String(64), nullable=False),
    Column("kind", String(32), nullable=False),  # the finding's
    Column("state", String(16), nullable=False),
    Column("round", Integer, nullable=False, server_default="0"),  # times the centre sent it back
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("acknowledge_due_at", DateTime(timezone=True), nullable=False),
    Column("handle_due_at", DateTime(timezone=True), nullable=False),  # this round's
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("acknowledged_by", String(64)),
    Column("acknowledged_on_time", Boolean),
    Column("handled_at", DateTime(timezone=True)),
    Column("handled_by", String(64)),
    Column("handled_note", Text),
    Column("handled_count", Integer, nullable=False, server_default="0"),
    Column("handled_late", Boolean, nullable=False, server_default=false()),  # any round's report late
    Column("closed_at", DateTime(timezone=True)),
    Column("closed_by", String(64)),
    Column("reopen_note", Text),
    # sla's cards on the warning's clocks (sla.warning_signal): the worst so far, yellow or red
    # (黄牌 / 红牌), and when the first red one came.
    Column("card", String(8)),
    Column("carded_at", DateTime(timezone=True)),
)
