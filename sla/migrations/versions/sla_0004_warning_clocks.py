"""Sla: an early warning's clocks beside the cases' (clocks.subject: case / warning).

Revision ID: sla_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "sla_0004"
down_revision = "sla_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clocks", sa.Column("subject", sa.String(8), nullable=False, server_default="case"))


def downgrade() -> None:
    op.drop_column("clocks", "subject")
