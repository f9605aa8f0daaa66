"""Sla: a case that is an item of a task sent down (自上而下的任务) has no 受理 and no 回访 clock.

Revision ID: sla_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "sla_0003"
down_revision = "sla_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sla_cases", sa.Column("task", sa.Boolean, nullable=False, server_default="false"))


def downgrade() -> None:
    op.drop_column("sla_cases", "task")
