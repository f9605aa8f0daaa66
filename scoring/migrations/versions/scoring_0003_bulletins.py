"""Scoring: bulletins as issued on schedule (一周一通报、一月一点评), kept as they were made.

Revision ID: scoring_0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "scoring_0003"
down_revision = "scoring_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issued_bulletins",
        sa.Column("county", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(8), primary_key=True),  # weekly | monthly
        sa.Column("period_start", sa.Date, primary_key=True),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("document", postgresql.JSONB, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("issued_bulletins")
