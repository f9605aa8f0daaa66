"""Intake: every view of a citizen's contact details in clear (who, when, which case, why).

Revision ID: intake_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0004"
down_revision = "intake_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contact_views",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.String(128), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("unit", sa.String(64)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("viewed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("contact_views_case", "contact_views", ["case_id", "viewed_at"])
    op.create_index("contact_views_actor", "contact_views", ["actor_id", "viewed_at"])


def downgrade() -> None:
    op.drop_table("contact_views")
