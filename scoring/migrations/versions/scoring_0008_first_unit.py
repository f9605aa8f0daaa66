"""Scoring: a case's first-responsible unit (首问负责制, carried on ``case.received``), so that
unit has its own figure: the cases it was first asked about and how they ended.

Revision ID: scoring_0008
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0008"
down_revision = "scoring_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Cases from before keep NULL (a rebuild from the topic fills what their events carried).
    op.add_column("case_facts", sa.Column("first_unit", sa.String(64)))
    op.create_index("case_facts_first_unit", "case_facts", ["first_unit", "received_at"])


def downgrade() -> None:
    op.drop_index("case_facts_first_unit", "case_facts")
    op.drop_column("case_facts", "first_unit")
