"""Dispatch: the holiday table (节假日安排) of each year whose moves of open orders' deadlines
were applied, by its loaded_at — written in the same transaction as the moves, so a table is
applied once per version however many replicas follow the topic or restart and replay it.

Revision ID: dispatch_0007
"""

import sqlalchemy as sa
from alembic import op

revision = "dispatch_0007"
down_revision = "dispatch_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holiday_tables_applied",
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("moved", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("holiday_tables_applied")
