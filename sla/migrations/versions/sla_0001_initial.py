"""Sla: the branch root (its own tables arrive with issue #6).

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
