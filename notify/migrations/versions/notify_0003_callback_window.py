"""Notify: a callback task keeps its window (shared.callback) — opens_at, when calling starts,
and due_at, the deadline SLA's callback clock shows (the end of the callback day).

Before this revision due_at held the hour on the callback day when calling starts; it becomes
opens_at, and due_at moves to 00:00 Beijing of the next calendar day, as the rule gives.

Revision ID: notify_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0003"
down_revision = "notify_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("callback_tasks", sa.Column("opens_at", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE callback_tasks SET opens_at = due_at,"
        " due_at = (((due_at AT TIME ZONE 'Asia/Shanghai')::date + 1)::timestamp) AT TIME ZONE 'Asia/Shanghai'"
    )
    op.alter_column("callback_tasks", "opens_at", nullable=False)


def downgrade() -> None:
    op.execute("UPDATE callback_tasks SET due_at = opens_at")
    op.drop_column("callback_tasks", "opens_at")
