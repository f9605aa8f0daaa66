"""case_status learns where a case is and which units were asked to handle it, so every
service can apply the org-scope rules (shared.scope) to its own reads.

Revision ID: plumbing_0003
Revises: plumbing_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "plumbing_0003"
down_revision = "plumbing_0002"
branch_labels = None
depends_on = None

PLACES = ("county", "township", "village", "grid")


def upgrade() -> None:
    for column in PLACES:
        op.add_column("case_status", sa.Column(column, sa.String(64)))
    op.add_column("case_status", sa.Column("units", postgresql.ARRAY(sa.String(64)), nullable=False, server_default="{}"))


def downgrade() -> None:
    op.drop_column("case_status", "units")
    for column in reversed(PLACES):
        op.drop_column("case_status", column)
