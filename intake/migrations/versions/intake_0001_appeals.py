"""Intake: appeals, the citizen timeline, signed-request nonces.

Revision ID: intake_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Frozen copy of intake.repository.OPEN_STATUSES at the time of this migration.
OPEN_STATUSES = ("accepted", "triage", "triaged", "dispatched", "in_progress", "called", "returned", "suspended", "reopened")

revision = "intake_0001"
down_revision = None
branch_labels = ("intake",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "appeals",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("tracking_no", sa.String(32), nullable=False, unique=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("contact_name_enc", sa.Text, nullable=False),
        sa.Column("phone_enc", sa.Text, nullable=False),
        sa.Column("phone_hash", sa.String(64), nullable=False),
        sa.Column("phone_masked", sa.String(16), nullable=False),
        sa.Column("id_number_enc", sa.Text),
        sa.Column("address_enc", sa.Text),
        sa.Column("street", sa.String(200)),
        sa.Column("lat", sa.Float),
        sa.Column("lng", sa.Float),
        sa.Column("county", sa.String(64)),
        sa.Column("township", sa.String(64)),
        sa.Column("village", sa.String(64)),
        sa.Column("grid", sa.String(64)),
        sa.Column("category", sa.String(8)),
        sa.Column("subject_class", sa.String(32)),
        sa.Column("urgency", sa.String(16)),
        sa.Column("confidence", sa.Float),
        sa.Column("triage", sa.String(16), nullable=False),
        sa.Column("reject_reason", sa.Text),
        sa.Column("merged_into", sa.String(64)),
        sa.Column("solved_on_spot", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("external_ref", sa.String(64)),
        sa.Column("reporter_id", sa.String(64)),
        sa.Column("attachments", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("idempotency_key", sa.String(128), unique=True),
        sa.Column("request_hash", sa.String(64)),
        sa.Column("accept_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("channel", "external_ref", name="appeals_channel_external_ref"),
    )
    op.create_index("appeals_phone_hash", "appeals", ["phone_hash", "created_at"])
    # Duplicate look-up reads only open, unmerged cases: partial indexes keep that read
    # bounded however many appeals a township has had (the predicate matches the query's).
    open_unmerged = sa.text(f"merged_into IS NULL AND status IN {OPEN_STATUSES!r}")
    op.create_index("appeals_open_nearby", "appeals", ["lat", "lng", "created_at"], postgresql_where=open_unmerged)
    op.create_index("appeals_open_township", "appeals", ["township", "created_at"], postgresql_where=open_unmerged)
    op.execute("CREATE SEQUENCE tracking_seq")
    op.create_table(
        "timeline",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
    )
    op.create_index("timeline_case", "timeline", ["case_id", "occurred_at"])
    op.create_table(
        "request_nonces",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.String(128), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("request_nonces")
    op.drop_table("timeline")
    op.execute("DROP SEQUENCE tracking_seq")
    op.drop_table("appeals")
