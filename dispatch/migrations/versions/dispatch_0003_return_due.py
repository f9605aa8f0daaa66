"""Dispatch: an order keeps the end of its return window (退单), computed once at dispatch
and carried on ``case.dispatched`` (``return_due_at``), like its resolve deadline ``due_at``.

Revision ID: dispatch_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "dispatch_0003"
down_revision = "dispatch_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Orders from before keep NULL: their window is counted from dispatched_at, as it was.
    op.add_column("orders", sa.Column("return_due_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("orders", "return_due_at")
