"""Scoring: who made a call (``calls.caller``) — the township, or the village or grid that blew
the whistle from below (网格吹哨、部门报到) — so the whistle and the departments' ratings of it
are the blower's, not the case's township's.

Revision ID: scoring_0009
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0009"
down_revision = "scoring_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Calls seen before were recorded as the township's (a rebuild from the topic puts a whistle
    # from below on its blower, which the event carries as blown_by).
    op.add_column("calls", sa.Column("caller", sa.String(64)))
    op.execute("UPDATE calls SET caller = township")
    op.alter_column("calls", "caller", nullable=False)


def downgrade() -> None:
    op.drop_column("calls", "caller")
