"""Sla: the holiday tables are the directory's now (shared.holidays); sla follows them from
the ``holiday-tables`` topic and keeps none of its own. A table loaded in sla before this
must be loaded again in the directory (PUT /api/v1/holidays/{year} there).

Revision ID: sla_0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "sla_0005"
down_revision = "sla_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("holiday_tables")


def downgrade() -> None:
    op.create_table(
        "holiday_tables",
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("holidays", postgresql.JSONB, nullable=False),
        sa.Column("workdays", postgresql.JSONB, nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("loaded_by", sa.String(128), nullable=False),
    )
