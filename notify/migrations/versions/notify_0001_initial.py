"""Notify: the branch root (its own tables arrive with issue #8).

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
