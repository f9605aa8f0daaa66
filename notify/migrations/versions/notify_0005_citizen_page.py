"""Notify: the citizen's page (NOTIFY_RATING_URL) — the answer a case's citizen reads before
rating, the public timeline kept from the topic, one-time look-up codes sent by SMS.

Revision ID: notify_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0005"
down_revision = "notify_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The latest answer (答复, case.resolved) and public summary (公示, case.closed).
    op.add_column("recipients", sa.Column("answer", sa.Text))
    op.add_column("recipients", sa.Column("public_summary", sa.Text))
    # The look-up by tracking number (编号) finds the case here.
    op.create_index("recipients_tracking_no", "recipients", ["tracking_no"])
    op.create_table(
        "timeline",
        sa.Column("event_id", sa.dialects.postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("timeline_case", "timeline", ["case_id", "occurred_at"])
    op.create_table(
        "lookup_codes",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("used_at", sa.DateTime(timezone=True)),
    )
    op.create_index("lookup_codes_case", "lookup_codes", ["case_id", "issued_at"])


def downgrade() -> None:
    op.drop_table("lookup_codes")
    op.drop_table("timeline")
    op.drop_index("recipients_tracking_no", "recipients")
    op.drop_column("recipients", "public_summary")
    op.drop_column("recipients", "answer")
