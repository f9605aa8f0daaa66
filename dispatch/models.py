"""Dispatch's own tables (its own database). The shared plumbing tables — outbox, inbox,
dead letters, case_status — come from the shared migration branch."""

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

order_seq = Sequence("order_seq", metadata=metadata)

# What dispatch knows of each case, from intake's events.
cases = Table(
    "cases",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("tracking_no", String(32)),
    Column("title", Text),
    Column("description", Text),
    Column("channel", String(16)),
    Column("subject_class", String(32)),
    Column("category", String(16)),
    Column("urgency", String(16)),
    Column("county", String(64)),
    Column("township", String(64)),
    Column("village", String(64)),
    Column("grid", String(64)),
    Column("street", Text),
    Column("solved_on_spot", Boolean, nullable=False, server_default="false"),
    Column("rejected", Boolean, nullable=False, server_default="false"),
    Column("merged_into", String(64)),
    Column("triaged", Boolean, nullable=False, server_default="false"),
    Column("stage", String(24), nullable=False, server_default="received"),  # received|dispatched|resolved|closed
    Column("redo_round", Integer, nullable=False, server_default="0"),
    Column("public_summary", Text),
    Column("received_at", DateTime(timezone=True)),
    Column("closed_at", DateTime(timezone=True)),
    # 首问负责制 / 谁接待、谁负责, from case.received (dispatch_0004)
    Column("first_unit", String(64)),
    Column("first_unit_name", Text),
    Column("received_by", String(128)),
    Column("resolve_due_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# One dispatch order (交办单) per unit per round.
orders = Table(
    "orders",
    metadata,
    Column("order_no", String(40), primary_key=True),
    Column("case_id", String(64), nullable=False, index=True),
    Column("unit", String(64), nullable=False),
    Column("unit_name", Text),
    Column("role", String(8), nullable=False),  # sole|lead|co
    Column("call_id", String(40)),
    Column("state", String(16), nullable=False),
    Column("resolution_class", String(16), nullable=False),
    Column("instructions", Text),
    Column("redo_round", Integer, nullable=False, server_default="0"),
    Column("automatic", Boolean, nullable=False, server_default="false"),
    Column("dispatched_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True)),  # the resolve deadline (shared.deadlines), carried on the events
    Column("return_due_at", DateTime(timezone=True)),  # end of the return window (退单); NULL for orders from before it
    Column("signed_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("answer", Text),
    Column("part_done", Boolean, nullable=False, server_default="false"),  # a co-handler reported its part
    Column("returns", JSONB, nullable=False, server_default="[]"),  # [{reason_code, reason, reviewed, upheld}]
    Column("extensions", JSONB, nullable=False, server_default="[]"),  # approved working days
    Column("plan", JSONB),
    Column("history", JSONB, nullable=False, server_default="[]"),  # [{action, actor, role, unit, at, detail}]
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("handover", Integer, nullable=False, server_default="0"),  # 上报 / 下派 so far in the round (dispatch_0005)
    # 现场勘查 (dispatch_0006): its deadline (shared.deadlines, carried on case.dispatched; NULL: not
    # an on-site matter) and the survey as recorded {findings, attachments, at, actor, unit}.
    Column("survey_due_at", DateTime(timezone=True)),
    Column("survey", JSONB),
    Index("orders_unit_state", "unit", "state"),
)

extension_requests = Table(
    "extension_requests",
    metadata,
    Column("request_id", String(40), primary_key=True),
    Column("order_no", String(40), nullable=False, index=True),
    Column("working_days", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("long_cycle", Boolean, nullable=False, server_default="false"),
    Column("state", String(12), nullable=False),  # pending|approved|denied
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
)

# The holiday table of each year whose deadline moves were applied to the open orders, by the
# table's loaded_at (dispatch_0007): a table is applied once per version, replicas and replays alike.
holiday_tables_applied = Table(
    "holiday_tables_applied",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("moved", Integer, nullable=False, server_default="0"),
)
