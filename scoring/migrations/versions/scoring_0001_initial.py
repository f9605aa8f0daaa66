"""Scoring: the branch root (the tables are in scoring_0002, so databases stamped at this revision upgrade).

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
