"""Intake: which units an appeal was sent to (for "current handler" and org-scoped reads).

Revision ID: intake_0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "intake_0003"
down_revision = "intake_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("appeals", sa.Column("handler_unit", sa.String(64)))
    op.add_column(
        "appeals",
        sa.Column("handler_units", postgresql.ARRAY(sa.String(64)), nullable=False, server_default="{}"),
    )
    # A department's list: "cases sent to me" is an array-overlap query.
    op.create_index("appeals_handler_units", "appeals", ["handler_units"], postgresql_using="gin")
    op.create_index("appeals_county_created", "appeals", ["county", "created_at"])


def downgrade() -> None:
    op.drop_index("appeals_county_created", "appeals")
    op.drop_index("appeals_handler_units", "appeals")
    op.drop_column("appeals", "handler_units")
    op.drop_column("appeals", "handler_unit")
