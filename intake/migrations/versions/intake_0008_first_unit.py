"""Intake: 首问负责制 and 谁接待、谁负责 on the appeal.

- ``appeals.first_unit``: the unit that first learned of the appeal (``intake.domain.first_responsible_unit``);
- ``appeals.received_by``: the person who received a walk-in (window) appeal and owns it;
- ``appeals.resolve_due_at``: a simple window appeal's 1-hour deadline (1小时诉求服务模式).

Revision ID: intake_0008
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0008"
down_revision = "intake_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Appeals filed before keep NULL: nobody recorded who first learned of them.
    op.add_column("appeals", sa.Column("first_unit", sa.String(64)))
    op.add_column("appeals", sa.Column("received_by", sa.String(128)))
    op.add_column("appeals", sa.Column("resolve_due_at", sa.DateTime(timezone=True)))
    op.create_index("appeals_first_unit", "appeals", ["first_unit"])


def downgrade() -> None:
    op.drop_index("appeals_first_unit", "appeals")
    for column in ("resolve_due_at", "received_by", "first_unit"):
        op.drop_column("appeals", column)
