"""Sla: clocks, fired signals, policies, holiday tables, the case projection, time offset.

Revision ID: sla_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "sla_0002"
down_revision = "sla_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clocks",
        sa.Column("clock_id", sa.String(200), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64)),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("name", sa.String(24), nullable=False),
        sa.Column("round", sa.Integer, nullable=False, server_default="0"),
        sa.Column("role", sa.String(8)),
        sa.Column("resolution_class", sa.String(16)),
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("policy_version", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True)),
        sa.Column("paused_total", sa.Interval, nullable=False, server_default=sa.text("interval '0'")),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
        sa.Column("fired", postgresql.ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("warnings", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("next_signal_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("clocks_next_signal", "clocks", ["next_signal_at"], postgresql_where=sa.text("next_signal_at IS NOT NULL"))
    op.create_index("clocks_case", "clocks", ["case_id"])
    op.create_index(
        "clocks_open_unit_due", "clocks", ["unit", "due_at", "clock_id"],
        postgresql_where=sa.text("state IN ('running', 'breached')"),
    )
    op.create_table(
        "signals",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("clock_id", sa.String(200), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("signal", sa.String(24), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64)),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("clock_id", "generation", "signal", name="signals_once"),
    )
    op.create_table(
        "policies",
        sa.Column("policy_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("region", sa.String(64)),
        sa.Column("category", sa.String(16)),
        sa.Column("urgency", sa.String(16)),
        sa.Column("limits", postgresql.JSONB, nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("policy_id", "version"),
    )
    # The practice's defaults (docs/rules.md) as version 1 of the catch-all policy (empty limits = defaults),
    # in force since long before any case, so every case finds a policy.
    op.execute(
        "INSERT INTO policies (policy_id, version, limits, effective_from, created_by, note) "
        "VALUES ('default', 1, '{}', '2000-01-01T00:00:00Z', 'migration', 'the practice''s defaults (docs/rules.md)')"
    )
    op.create_table(
        "holiday_tables",
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("holidays", postgresql.JSONB, nullable=False),
        sa.Column("workdays", postgresql.JSONB, nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("loaded_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "sla_cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("category", sa.String(16)),
        sa.Column("region", sa.String(64)),
        sa.Column("urgency", sa.String(16)),
        sa.Column("policy_id", sa.String(64)),
        sa.Column("policy_version", sa.Integer),
        sa.Column("closed", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("redo_round", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "time_offset",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("offset_seconds", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("time_offset", "sla_cases", "holiday_tables", "policies", "signals", "clocks"):
        op.drop_table(table)
