"""Dispatch: a case keeps its first-responsible unit (首问负责制), carried on ``case.received``
(``first_unit``), and who received it at a window (谁接待、谁负责, ``received_by``) with a simple
window appeal's 1-hour deadline (``resolve_due_at``).

Revision ID: dispatch_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "dispatch_0004"
down_revision = "dispatch_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Cases from before keep NULL: their events did not say.
    op.add_column("cases", sa.Column("first_unit", sa.String(64)))
    op.add_column("cases", sa.Column("first_unit_name", sa.Text))
    op.add_column("cases", sa.Column("received_by", sa.String(128)))
    op.add_column("cases", sa.Column("resolve_due_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    for column in ("resolve_due_at", "received_by", "first_unit_name", "first_unit"):
        op.drop_column("cases", column)
