"""Scoring: facts from the topic, two-way ratings, grid activity, versioned weights and
grid points, published scores.

Revision ID: scoring_0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "scoring_0002"
down_revision = "scoring_0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "case_facts",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("tracking_no", sa.String(32)),
        sa.Column("channel", sa.String(16)),
        sa.Column("county", sa.String(64)),
        sa.Column("township", sa.String(64)),
        sa.Column("grid", sa.String(64)),
        sa.Column("subject_class", sa.String(32)),
        sa.Column("category", sa.String(8)),
        sa.Column("received_at", TZ),
        sa.Column("accepted_at", TZ),
        sa.Column("rejected_at", TZ),
        sa.Column("merged_into", sa.String(64)),
        sa.Column("solved_on_spot", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("resolved_at", TZ),
        sa.Column("solved", sa.Boolean),
        sa.Column("closed_at", TZ),
        sa.Column("current_round", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("case_facts_county_received", "case_facts", ["county", "received_at"])
    op.create_index("case_facts_township_received", "case_facts", ["township", "received_at"])
    op.create_table(
        "unit_orders",
        sa.Column("order_no", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("unit_name", sa.String(200)),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("redo_round", sa.Integer, nullable=False),
        sa.Column("dispatched_at", TZ, nullable=False),
        sa.Column("signed_at", TZ),
        sa.Column("returned_at", TZ),
        sa.Column("resolved_at", TZ),
        sa.Column("solved", sa.Boolean),
        sa.Column("sign_late", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("resolve_late", sa.Boolean, nullable=False, server_default="false"),
    )
    op.create_index("ix_unit_orders_case_id", "unit_orders", ["case_id"])
    op.create_index("ix_unit_orders_unit", "unit_orders", ["unit"])
    op.create_table(
        "sla_cards",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64)),
        sa.Column("clock", sa.String(24), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("due_at", TZ, nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
    )
    op.create_index("ix_sla_cards_case_id", "sla_cards", ["case_id"])
    op.create_table(
        "case_ratings",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("round", sa.Integer, primary_key=True),
        sa.Column("rating", sa.String(8), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("units", postgresql.JSONB, nullable=False, server_default="[]"),
        sa.Column("rated_at", TZ, nullable=False),
    )
    op.create_table(
        "calls",
        sa.Column("call_id", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("township", sa.String(64), nullable=False),
        sa.Column("units", postgresql.JSONB, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("called_at", TZ, nullable=False),
    )
    op.create_index("ix_calls_case_id", "calls", ["case_id"])
    op.create_table(
        "unit_ratings",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("direction", sa.String(32), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("rater_unit", sa.String(64), nullable=False),
        sa.Column("rated_unit", sa.String(64), nullable=False),
        sa.Column("rating", sa.String(8)),
        sa.Column("score", sa.Integer),
        sa.Column("justified", sa.Boolean),
        sa.Column("complete", sa.Boolean),
        sa.Column("comment", sa.Text),
        sa.Column("rated_at", TZ, nullable=False),
        sa.UniqueConstraint("direction", "case_id", "call_id", "round", "rater_unit", "rated_unit", name="unit_ratings_once"),
    )
    op.create_table(
        "grid_activity",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("grid", sa.String(64), nullable=False),
        sa.Column("township", sa.String(64)),
        sa.Column("county", sa.String(64)),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("occurred_at", TZ, nullable=False),
    )
    op.create_index("grid_activity_county_time", "grid_activity", ["county", "occurred_at"])
    op.create_table(
        "weight_versions",
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("response", sa.Numeric(9, 4), nullable=False),
        sa.Column("resolution", sa.Numeric(9, 4), nullable=False),
        sa.Column("satisfaction", sa.Numeric(9, 4), nullable=False),
        sa.Column("township_rating", sa.Numeric(9, 4), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("created_by", sa.String(128)),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    # Version 1: the published Zhungeer weighting, response 30 / resolution 35 / satisfaction 35.
    op.execute(
        "INSERT INTO weight_versions (version, response, resolution, satisfaction, township_rating, note, created_by) "
        "VALUES (1, 30, 35, 35, 0, '准格尔旗: 响应30 / 解决35 / 满意35', 'migration')"
    )
    op.create_table(
        "grid_point_versions",
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("points", postgresql.JSONB, nullable=False),
        sa.Column("caps", postgresql.JSONB, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("created_by", sa.String(128)),
        sa.Column("created_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    # Version 1 (frozen copy of scoring.grid.DEFAULT_POINTS / DEFAULT_CAPS at this migration).
    op.execute(
        "INSERT INTO grid_point_versions (version, points, caps, note, created_by) VALUES (1, "
        """'{"login": 1, "info_update": 2, "report": 5, "patrol": 3, "event_handled": 5, "solved_on_spot": 8}', """
        """'{"login": 22, "info_update": 40, "report": 100, "patrol": 90, "event_handled": 100, "solved_on_spot": 80}', """
        "'default points and monthly caps', 'migration')"
    )
    op.create_table(
        "published_scores",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("county", sa.String(64), nullable=False),
        sa.Column("period_kind", sa.String(8), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("score", sa.String(16)),
        sa.Column("score_exact", sa.String(64)),
        sa.Column("weights_version", sa.Integer, nullable=False),
        sa.Column("published_by", sa.String(128)),
        sa.Column("published_at", TZ, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("county", "period_kind", "period_start", "period_end", "unit", "weights_version", name="published_once"),
    )


def downgrade() -> None:
    for table in (
        "published_scores", "grid_point_versions", "weight_versions", "grid_activity", "unit_ratings",
        "calls", "case_ratings", "sla_cards", "unit_orders", "case_facts",
    ):
        op.drop_table(table)
