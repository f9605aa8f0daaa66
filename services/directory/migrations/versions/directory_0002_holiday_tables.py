"""Directory: holiday_tables, one row per year's national holiday schedule (moved from SLA:
every service follows it from the topic holiday-tables).

Revision ID: directory_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "directory_0002"
down_revision = "directory_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "holiday_tables",
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("holidays", postgresql.JSONB, nullable=False),
        sa.Column("workdays", postgresql.JSONB, nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("loaded_by", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("holiday_tables")
