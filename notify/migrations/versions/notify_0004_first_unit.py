"""Notify: a case's first-responsible unit (首问负责制, carried on ``case.received``), which
gets a copy of the case's cards and urgings in its inbox.

Revision ID: notify_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0004"
down_revision = "notify_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Cases from before keep NULL: nobody to copy.
    op.add_column("recipients", sa.Column("first_unit", sa.String(64)))


def downgrade() -> None:
    op.drop_column("recipients", "first_unit")
