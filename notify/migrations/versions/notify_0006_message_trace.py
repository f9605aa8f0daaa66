"""Notify: the trace context a message is sent under (``messages.traceparent``), so the
outbound call to the SMS gateway, WeChat or 12345 joins the appeal's trace.

Revision ID: notify_0006
"""

import sqlalchemy as sa
from alembic import op

revision = "notify_0006"
down_revision = "notify_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Messages from before, and every message when tracing is off, keep NULL: sent untraced.
    op.add_column("messages", sa.Column("traceparent", sa.String(64)))


def downgrade() -> None:
    op.drop_column("messages", "traceparent")
