"""Insight: early warnings (预警信息处置), one per finding that warns a unit.

Revision ID: insight_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "insight_0002"
down_revision = "insight_0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "warnings",
        sa.Column("warning_id", sa.String(64), primary_key=True),
        sa.Column("finding_id", sa.String(64), nullable=False, unique=True),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("county", sa.String(64)),
        sa.Column("centre", sa.String(64)),
        sa.Column("subject_class", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("round", sa.Integer, nullable=False, server_default="0"),
        sa.Column("opened_at", TZ, nullable=False),
        sa.Column("acknowledge_due_at", TZ, nullable=False),
        sa.Column("handle_due_at", TZ, nullable=False),
        sa.Column("acknowledged_at", TZ),
        sa.Column("acknowledged_by", sa.String(64)),
        sa.Column("acknowledged_on_time", sa.Boolean),
        sa.Column("handled_at", TZ),
        sa.Column("handled_by", sa.String(64)),
        sa.Column("handled_note", sa.Text),
        sa.Column("handled_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("handled_late", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("closed_at", TZ),
        sa.Column("closed_by", sa.String(64)),
        sa.Column("reopen_note", sa.Text),
    )
    op.create_index("warnings_county_opened", "warnings", ["county", "opened_at"])
    op.create_index("warnings_unit_opened", "warnings", ["unit", "opened_at"])


def downgrade() -> None:
    op.drop_table("warnings")
