"""Dispatch: cases as dispatch sees them, dispatch orders (交办单), extension requests.

Revision ID: dispatch_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "dispatch_0002"
down_revision = "dispatch_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE order_seq")
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("tracking_no", sa.String(32)),
        sa.Column("title", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("channel", sa.String(16)),
        sa.Column("subject_class", sa.String(32)),
        sa.Column("category", sa.String(16)),
        sa.Column("urgency", sa.String(16)),
        sa.Column("county", sa.String(64)),
        sa.Column("township", sa.String(64)),
        sa.Column("village", sa.String(64)),
        sa.Column("grid", sa.String(64)),
        sa.Column("street", sa.Text),
        sa.Column("solved_on_spot", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("rejected", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("merged_into", sa.String(64)),
        sa.Column("triaged", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("stage", sa.String(24), nullable=False, server_default="received"),
        sa.Column("redo_round", sa.Integer, nullable=False, server_default="0"),
        sa.Column("public_summary", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("cases_stage", "cases", ["stage"])
    op.create_table(
        "orders",
        sa.Column("order_no", sa.String(40), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("unit_name", sa.Text),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("call_id", sa.String(40)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("resolution_class", sa.String(16), nullable=False),
        sa.Column("instructions", sa.Text),
        sa.Column("redo_round", sa.Integer, nullable=False, server_default="0"),
        sa.Column("automatic", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True)),
        sa.Column("signed_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("answer", sa.Text),
        sa.Column("part_done", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("returns", JSONB, nullable=False, server_default="[]"),
        sa.Column("extensions", JSONB, nullable=False, server_default="[]"),
        sa.Column("plan", JSONB),
        sa.Column("history", JSONB, nullable=False, server_default="[]"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("orders_case_id", "orders", ["case_id"])
    op.create_index("orders_unit_state", "orders", ["unit", "state"])
    # One order per unit, case and round: an event applied twice cannot dispatch twice.
    op.create_index("orders_once_per_round", "orders", ["case_id", "unit", "redo_round", "call_id"], unique=True,
                    postgresql_nulls_not_distinct=True)
    op.create_table(
        "extension_requests",
        sa.Column("request_id", sa.String(40), primary_key=True),
        sa.Column("order_no", sa.String(40), nullable=False),
        sa.Column("working_days", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("long_cycle", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )
    op.create_index("extension_requests_order", "extension_requests", ["order_no"])


def downgrade() -> None:
    op.drop_table("extension_requests")
    op.drop_table("orders")
    op.drop_table("cases")
    op.execute("DROP SEQUENCE order_seq")
