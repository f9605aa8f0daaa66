"""Notify: recipients, callbacks (回访), rating tokens and ratings, messages and their attempts.

Revision ID: notify_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "notify_0002"
down_revision = "notify_0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recipients",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("tracking_no", sa.String(32)),
        sa.Column("channel", sa.String(16)),
        sa.Column("external_ref", sa.String(64)),
        sa.Column("citizen_ref", sa.String(64)),
        sa.Column("phone_enc", sa.Text),
        sa.Column("phone_masked", sa.String(16)),
        sa.Column("township", sa.String(64)),
        sa.Column("urgency", sa.String(16)),
        sa.Column("round", sa.Integer, nullable=False, server_default="0"),
        sa.Column("units", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("unit_names", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "callback_tasks",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("township", sa.String(64)),
        sa.Column("tracking_no", sa.String(32)),
        sa.Column("closed_at", TZ, nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state", sa.String(16), nullable=False, server_default="open"),
        sa.Column("rating", sa.String(8)),
        sa.Column("comment", sa.Text),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("case_id", "round", name="callback_tasks_case_round"),
    )
    # The operators' queue reads open tasks by due time (and township).
    op.create_index("callback_tasks_open_due", "callback_tasks", ["due_at", "id"], postgresql_where=sa.text("state = 'open'"))
    op.create_table(
        "callback_attempts",
        sa.Column("task_id", sa.BigInteger, sa.ForeignKey("callback_tasks.id"), primary_key=True),
        sa.Column("attempt", sa.Integer, primary_key=True),
        sa.Column("reached", sa.Boolean, nullable=False),
        sa.Column("rating", sa.String(8)),
        sa.Column("comment", sa.Text),
        sa.Column("operator", sa.String(128), nullable=False),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_table(
        "rating_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("issued_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ),
        sa.UniqueConstraint("event_id", "purpose", name="rating_tokens_event_purpose"),
    )
    op.create_table(
        "ratings",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("round", sa.Integer, primary_key=True),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("rated_at", TZ, nullable=False),
    )
    op.create_table(
        "questionnaire_answers",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("round", sa.Integer, primary_key=True),
        sa.Column("answers", postgresql.JSONB, nullable=False),
        sa.Column("answered_at", TZ, nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("case_id", sa.String(64)),
        sa.Column("recipient", sa.String(160), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(48), nullable=False),
        sa.Column("body_enc", sa.Text, nullable=False),
        sa.Column("payload", postgresql.JSONB),
        sa.Column("urgent", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("state", sa.String(12), nullable=False, server_default="queued"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", TZ),
        sa.Column("delivered_at", TZ),
        sa.Column("read_at", TZ),
        sa.UniqueConstraint("event_id", "recipient", "channel", name="messages_event_recipient_channel"),
    )
    # The sender picks due work; the rate limit reads a recipient's recent sends; the inbox reads by recipient.
    op.create_index(
        "messages_due", "messages", ["next_attempt_at", "id"],
        postgresql_where=sa.text("state IN ('queued', 'held', 'sending', 'failed')"),
    )
    op.create_index("messages_recipient", "messages", ["recipient", "channel", "sent_at"])
    op.create_index("messages_case", "messages", ["case_id", "id"])
    op.create_table(
        "message_attempts",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.BigInteger, sa.ForeignKey("messages.id"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("error", sa.Text),
    )
    op.create_index("message_attempts_message", "message_attempts", ["message_id", "id"])


def downgrade() -> None:
    for table in (
        "message_attempts", "messages", "questionnaire_answers", "ratings", "rating_tokens",
        "callback_attempts", "callback_tasks", "recipients",
    ):
        op.drop_table(table)
