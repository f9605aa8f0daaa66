"""Intake: grid duties (issue #23 item 7) — the household register (结一联十, 困难/重点监测
flags), the visits, mailbox openings and proxy services recorded, the mailbox schedules,
and the warnings raised for missed duties.

Revision ID: intake_0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "intake_0007"
down_revision = "intake_0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "grid_households",
        sa.Column("household_ref", sa.String(64), primary_key=True),
        sa.Column("grid", sa.String(64), nullable=False, index=True),
        sa.Column("keeper_id", sa.String(128)),
        sa.Column("organiser_id", sa.String(128), index=True),
        sa.Column("difficult", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("monitored", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "grid_duties",
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("grid", sa.String(64), nullable=False),
        sa.Column("worker_id", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(64)),
        sa.Column("at", TZ, nullable=False),
        sa.Column("detail", JSONB, nullable=False, server_default="{}"),
    )
    op.create_index("grid_duties_grid_kind_at", "grid_duties", ["grid", "kind", "at"])
    op.create_table(
        "grid_mailbox_schedules",
        sa.Column("grid", sa.String(64), primary_key=True),
        sa.Column("weekdays", ARRAY(sa.BigInteger), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "grid_warnings",
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("grid", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("kind", "grid", "subject", "period", name="grid_warnings_once"),
    )


def downgrade() -> None:
    op.drop_table("grid_warnings")
    op.drop_table("grid_mailbox_schedules")
    op.drop_index("grid_duties_grid_kind_at", table_name="grid_duties")
    op.drop_table("grid_duties")
    op.drop_table("grid_households")
