"""Insight: appeals (its projection of the cases), findings and the last day of each pattern.

Revision ID: insight_0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "insight_0001"
down_revision = None
branch_labels = ("insight",)
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "appeals",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("received_on", sa.Date),
        sa.Column("subject_class", sa.String(64)),
        sa.Column("county", sa.String(64)),
        sa.Column("township", sa.String(64)),
        sa.Column("village", sa.String(64)),
        sa.Column("grid", sa.String(64)),
        sa.Column("street", sa.String(128)),
        sa.Column("unit", sa.String(64)),
        sa.Column("merges", sa.Integer, nullable=False, server_default="0"),
        sa.Column("redo_round", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    # The detectors load one subject's recent appeals in a township, or a unit's.
    op.create_index("appeals_township_subject_day", "appeals", ["township", "subject_class", "received_on"])
    op.create_index("appeals_unit_subject_day", "appeals", ["unit", "subject_class", "received_on"])
    op.create_table(
        "findings",
        sa.Column("finding_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("area", sa.String(64), nullable=False),
        sa.Column("county", sa.String(64)),
        sa.Column("township", sa.String(64)),
        sa.Column("street", sa.String(128)),
        sa.Column("unit", sa.String(64)),
        sa.Column("subject_class", sa.String(64), nullable=False),
        sa.Column("detected_on", sa.Date, nullable=False),
        sa.Column("window_start", sa.Date, nullable=False),
        sa.Column("window_end", sa.Date, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("baseline", sa.Float, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("case_ids", postgresql.JSONB, nullable=False),
        sa.Column("explanation", sa.Text, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("findings_county_detected", "findings", ["county", "detected_on"])
    op.create_table(
        "finding_keys",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("last_on", sa.Date),
    )


def downgrade() -> None:
    op.drop_table("finding_keys")
    op.drop_table("findings")
    op.drop_table("appeals")
