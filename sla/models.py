"""Sla's own tables (its own database). The shared plumbing tables — outbox, inbox,
dead letters, case_status — come from the shared migration branch.

Sized for a million open clocks: the ticker reads only the partial index on
``next_signal_at`` (NULL once a clock is stopped, paused or has nothing left to fire), and
the unit lists read ``(unit, due_at)`` restricted to open clocks.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    Interval,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()

# One clock per case (unit NULL) or per unit on a case; the id is derived from the event
# that starts it (case, name, unit, round), so a redelivered or replayed event finds it.
# An early warning's clocks (预警信息处置) are rows here too, ``subject`` 'warning' and its
# warning id in ``case_id`` (the column is the subject's id): the same ticker, the same rules.
clocks = Table(
    "clocks",
    metadata,
    Column("clock_id", String(200), primary_key=True),
    Column("case_id", String(64), nullable=False),
    Column("subject", String(8), nullable=False, server_default="case"),  # case / warning
    Column("unit", String(64)),
    Column("kind", String(24), nullable=False),  # shared.events.ClockKind
    Column("name", String(24), nullable=False),  # the kind, or "response" for a county call / whistle
    Column("round", Integer, nullable=False, server_default="0"),  # redo round (重办)
    Column("role", String(8)),  # sole/lead/co for unit clocks
    Column("resolution_class", String(16)),
    Column("policy_id", String(64), nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("paused_at", DateTime(timezone=True)),
    Column("paused_total", Interval, nullable=False, server_default=text("interval '0'")),  # working time paused
    Column("stopped_at", DateTime(timezone=True)),
    Column("state", String(12), nullable=False),  # running / paused / stopped / breached
    Column("generation", Integer, nullable=False, server_default="0"),  # +1 per extension: thresholds fire anew
    Column("fired", ARRAY(Text), nullable=False, server_default="{}"),  # thresholds fired in this generation
    Column("warnings", JSONB, nullable=False, server_default="[]"),
    Column("next_signal_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("clocks_next_signal", clocks.c.next_signal_at, postgresql_where=clocks.c.next_signal_at.is_not(None))
Index("clocks_case", clocks.c.case_id)
Index("clocks_open_unit_due", clocks.c.unit, clocks.c.due_at, clocks.c.clock_id, postgresql_where=clocks.c.state.in_(("running", "breached")))

# Each threshold fires once per clock and deadline generation, whichever replica gets there
# first: INSERT … ON CONFLICT DO NOTHING on this key decides.
signals = Table(
    "signals",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("clock_id", String(200), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("signal", String(24), nullable=False),  # yellow, 50%, red, urge-N, escalate, redo_limit
    Column("case_id", String(64), nullable=False),
    Column("unit", String(64)),
    Column("event_id", String(64), nullable=False),
    Column("fired_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("clock_id", "generation", "signal", name="signals_once"),
)

# Versioned limits per region × category × urgency (NULL = any). A version never changes once
# written; a clock records the (policy_id, version) it started under.
policies = Table(
    "policies",
    metadata,
    Column("policy_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("region", String(64)),
    Column("category", String(16)),
    Column("urgency", String(16)),
    Column("limits", JSONB, nullable=False),
    Column("effective_from", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", String(128), nullable=False),
    Column("note", Text),
    PrimaryKeyConstraint("policy_id", "version"),
)

# What sla needs to know of a case: urgency/region/category from triage, the policy the case
# started under, whether it is closed (then nothing more starts), the redo round.
sla_cases = Table(
    "sla_cases",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("category", String(16)),
    Column("region", String(64)),
    Column("urgency", String(16)),
    Column("policy_id", String(64)),
    Column("policy_version", Integer),
    Column("closed", Boolean, nullable=False, server_default="false"),
    Column("redo_round", Integer, nullable=False, server_default="0"),
    # 自上而下的任务 (sla_0003): a task item has no citizen — no 受理 clock, no 回访 clock.
    Column("task", Boolean, nullable=False, server_default="false"),
)

# Time travel (SLA_TIME_TRAVEL=true only): one row, shared by every replica.
time_offset = Table(
    "time_offset",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("offset_seconds", BigInteger, nullable=False),
)
