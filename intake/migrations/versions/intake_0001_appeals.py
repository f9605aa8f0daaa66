"""Intake: appeals and the citizen timeline.

Revision ID: intake_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "intake_0001"
down_revision = None
branch_labels = ("intake",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appeals",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("tracking_no", sa.String(32), nullable=False, unique=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("idempotency_key", sa.String(128), unique=True),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.execute("CREATE SEQUENCE tracking_seq")
    op.create_table(
        "timeline",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("timeline_case", "timeline", ["case_id", "occurred_at"])


def downgrade() -> None:
    op.drop_table("timeline")
    op.execute("DROP SEQUENCE tracking_seq")
    op.drop_table("appeals")
