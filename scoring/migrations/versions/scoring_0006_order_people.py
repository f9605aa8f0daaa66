"""Scoring: who signed, returned and answered each order (the events' actors), for the scores
and rates per handling person (个人绩效和评价结果挂钩). Orders applied before this revision
have no person until the facts are rebuilt from the topic (POST /api/v1/admin/rebuild).

Revision ID: scoring_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0006"
down_revision = "scoring_0005"
branch_labels = None
depends_on = None

COLUMNS = ("signed_by", "returned_by", "resolved_by")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("unit_orders", sa.Column(name, sa.String(128)))


def downgrade() -> None:
    for name in COLUMNS:
        op.drop_column("unit_orders", name)
