"""Scoring: the branch root (its own tables arrive with issue #7).

Revision ID: scoring_0001
"""

revision = "scoring_0001"
down_revision = None
branch_labels = ("scoring",)
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
