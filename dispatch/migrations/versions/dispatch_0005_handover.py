"""Dispatch: the village level (村级). An order handed over by 上报 (a village to its
township) or 下派 (the township to a village) counts its handovers in the round, so a
matter can go up, down and up again while one unit still holds at most one order per
case, round, call and handover (an event applied twice still cannot dispatch twice).

Revision ID: dispatch_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "dispatch_0005"
down_revision = "dispatch_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("handover", sa.Integer, nullable=False, server_default="0"))
    op.drop_index("orders_once_per_round", table_name="orders")
    op.create_index("orders_once_per_round", "orders", ["case_id", "unit", "redo_round", "call_id", "handover"], unique=True,
                    postgresql_nulls_not_distinct=True)


def downgrade() -> None:
    op.drop_index("orders_once_per_round", table_name="orders")
    op.create_index("orders_once_per_round", "orders", ["case_id", "unit", "redo_round", "call_id"], unique=True,
                    postgresql_nulls_not_distinct=True)
    op.drop_column("orders", "handover")
