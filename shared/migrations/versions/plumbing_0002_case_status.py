"""case_status: where each case stands, as the service has seen it on the topic.

Revision ID: plumbing_0002
Revises: plumbing_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "plumbing_0002"
down_revision = "plumbing_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_status",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(24)),
        sa.Column("events_applied", sa.Integer, nullable=False),
        sa.Column("last_event_type", sa.String(64), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("case_status")
