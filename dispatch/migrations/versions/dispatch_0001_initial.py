"""Dispatch: the branch root (its own tables arrive with issue #5).

Revision ID: dispatch_0001
"""

revision = "dispatch_0001"
down_revision = None
branch_labels = ("dispatch",)
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
