"""Intake: the photos a step carries, on the citizen's timeline (issue #23: the on-site survey's
photos, ``case.surveyed.photos``, shown where the case's timeline is read).

Revision ID: intake_0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "intake_0009"
down_revision = "intake_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Entries written before carry no photos: their events were shown as text only.
    op.add_column("timeline", sa.Column("attachments", JSONB, nullable=False, server_default="[]"))


def downgrade() -> None:
    op.drop_column("timeline", "attachments")
