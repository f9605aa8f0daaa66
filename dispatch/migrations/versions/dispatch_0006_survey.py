"""Dispatch: the on-site survey (现场勘查) as a step of its own. An order of an on-site
matter has a survey deadline (computed once, carried on case.dispatched); the survey the
unit records (findings, photos) stays on the order for whoever reads it.

Revision ID: dispatch_0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "dispatch_0006"
down_revision = "dispatch_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("survey_due_at", sa.DateTime(timezone=True)))
    op.add_column("orders", sa.Column("survey", JSONB))


def downgrade() -> None:
    op.drop_column("orders", "survey")
    op.drop_column("orders", "survey_due_at")
