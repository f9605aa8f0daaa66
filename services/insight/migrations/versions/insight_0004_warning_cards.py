"""Insight: the cards an early warning got from sla (sla.warning_signal): the worst, and when red.

Revision ID: insight_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "insight_0004"
down_revision = "insight_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("warnings", sa.Column("card", sa.String(8)))
    op.add_column("warnings", sa.Column("carded_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("warnings", "carded_at")
    op.drop_column("warnings", "card")
