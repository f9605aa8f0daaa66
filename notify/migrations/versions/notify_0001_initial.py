"""Notify: the branch root (the tables are in notify_0002, so databases stamped at this revision upgrade).

Revision ID: notify_0001
"""

revision = "notify_0001"
down_revision = None
branch_labels = ("notify",)
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
