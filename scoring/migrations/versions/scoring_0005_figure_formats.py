"""Scoring: figures as each county publishes them — rounding and decimals per county, versioned.

Seeded with what the practice's published figures show: 来宾市 publishes with one decimal,
half-up (来宾 2,813 of 2,864 → 98.2%, 城关镇 253 of 260 → 97.3%), and its counties follow it
unless they set their own; 武宣县 published 通挽镇's 121 of 127 = 95.2756…% as 95.27%:
truncated, two decimals. Everywhere else the default (half-up, two decimals) applies.

Revision ID: scoring_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0005"
down_revision = "scoring_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "figure_formats",
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("county", sa.String(64), nullable=False, index=True),
        sa.Column("rounding", sa.String(16), nullable=False),
        sa.Column("places", sa.Integer, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("created_by", sa.String(128)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.bulk_insert(table, [
        {"version": 1, "county": "LB", "rounding": "half_up", "places": 1, "created_by": "migration",
         "note": "来宾市: 一位小数, 四舍五入 (2813/2864 → 98.2%)"},
        {"version": 2, "county": "LB-WX", "rounding": "truncate", "places": 2, "created_by": "migration",
         "note": "武宣县: 两位小数, 截位 (通挽镇 121/127 → 95.27%)"},
    ])


def downgrade() -> None:
    op.drop_table("figure_formats")
