"""Insight: tasks sent down (自上而下的任务) and their items, one per place or unit.

Revision ID: insight_0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "insight_0003"
down_revision = "insight_0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("county", sa.String(64)),
        sa.Column("issued_by", sa.String(64)),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("instructions", sa.Text, nullable=False),
        sa.Column("subject_class", sa.String(64)),
        sa.Column("resolution_class", sa.String(16), nullable=False),
        sa.Column("finding_id", sa.String(64)),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("tasks_county_created", "tasks", ["county", "created_at"])
    op.create_table(
        "task_items",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("item_no", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False, unique=True),
        sa.Column("tracking_no", sa.String(32), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("unit_name", sa.Text),
        sa.Column("township", sa.String(64)),
        sa.Column("village", sa.String(64)),
        sa.Column("grid", sa.String(64)),
        sa.Column("street", sa.String(128)),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("order_no", sa.String(40)),
        sa.Column("redo_round", sa.Integer, nullable=False, server_default="0"),
        sa.Column("history", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("task_items")
    op.drop_table("tasks")
