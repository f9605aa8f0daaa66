"""Sla: the branch root (the tables are in sla_0002, so databases stamped at this revision upgrade).

Revision ID: sla_0001
"""

revision = "sla_0001"
down_revision = None
branch_labels = ("sla",)
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
