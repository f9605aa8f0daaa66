"""Directory: org_versions, one row per version of the org document.

Revision ID: directory_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "directory_0001"
down_revision = None
branch_labels = ("directory",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "org_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("document", postgresql.JSONB, nullable=False),
        sa.Column("changed_by", sa.String(128), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("summary", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("org_versions")
