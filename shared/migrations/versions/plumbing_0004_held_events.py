"""Events held until their cause is known (shared.holding): ``held_events``, and the causes
each case has had applied here, ``case_causes``.

Cases this service had seen before holding existed get the cause ``*`` (every cause known):
their later events must not wait for a cause applied before anything was recorded.

Revision ID: plumbing_0004
Revises: plumbing_0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "plumbing_0004"
down_revision = "plumbing_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_causes",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(64), primary_key=True),
    )
    op.execute("INSERT INTO case_causes (case_id, event_type) SELECT case_id, '*' FROM case_status")
    op.create_table(
        "held_events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("key", sa.LargeBinary),
        sa.Column("headers", postgresql.JSONB, nullable=False),
        sa.Column("body", sa.LargeBinary),
        sa.Column("first_held_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
    )
    op.create_index("held_events_case", "held_events", ["case_id", "id"])


def downgrade() -> None:
    op.drop_index("held_events_case", table_name="held_events")
    op.drop_table("held_events")
    op.drop_table("case_causes")
