"""Intake: the household register's history (结一联十, 困难/重点监测). Every change to a
household's grid, keeper, organiser or flags is a version: who, when it took effect, when it
was recorded. A month's visit duty is judged against the versions in force in that month.

Revision ID: intake_0010
"""

import sqlalchemy as sa
from alembic import op

revision = "intake_0010"
down_revision = "intake_0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "grid_household_versions",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("household_ref", sa.String(64), nullable=False),
        sa.Column("grid", sa.String(64), nullable=False, index=True),
        sa.Column("keeper_id", sa.String(128)),
        sa.Column("organiser_id", sa.String(128)),
        sa.Column("difficult", sa.Boolean, nullable=False),
        sa.Column("monitored", sa.Boolean, nullable=False),
        sa.Column("changed_by", sa.String(128), nullable=False),
        sa.Column("effective_at", TZ, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("grid_household_versions_ref", "grid_household_versions", ["household_ref", "effective_at", "id"])
    # The register as it stands is its first known version, in force since its last change:
    # nothing recorded what it was before.
    op.execute(
        "INSERT INTO grid_household_versions (household_ref, grid, keeper_id, organiser_id, difficult, monitored,"
        " changed_by, effective_at, recorded_at)"
        " SELECT household_ref, grid, keeper_id, organiser_id, difficult, monitored, updated_by, updated_at, updated_at"
        " FROM grid_households"
    )


def downgrade() -> None:
    op.drop_index("grid_household_versions_ref", table_name="grid_household_versions")
    op.drop_table("grid_household_versions")
