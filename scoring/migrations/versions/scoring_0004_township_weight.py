"""Scoring: weights version 2 — the townships' rating of the departments they called counts
(县乡履职双向考核评价: the township's weight in rating county departments is raised).

Response 24 / resolution 28 / satisfaction 28 / township rating 20: Zhungeer's 30/35/35 kept
in proportion on 80 of the 100, and a fifth of a department's score given to the townships
it served. Added as a new version (weights are never edited), and only over the seeded
version 1: weights an operator already set stay the current ones.

Revision ID: scoring_0004
"""

from alembic import op

revision = "scoring_0004"
down_revision = "scoring_0003"
branch_labels = None
depends_on = None

NOTE = "县乡双向考核: 乡镇评价县直部门占20 (响应24 / 解决28 / 满意28, 准格尔旗比例)"


def upgrade() -> None:
    op.execute(
        "INSERT INTO weight_versions (version, response, resolution, satisfaction, township_rating, note, created_by) "
        f"SELECT latest.version + 1, 24, 28, 28, 20, '{NOTE}', 'migration' "
        "FROM (SELECT version, created_by FROM weight_versions ORDER BY version DESC LIMIT 1) AS latest "
        "WHERE latest.created_by = 'migration'"
    )


def downgrade() -> None:
    op.execute(f"DELETE FROM weight_versions WHERE created_by = 'migration' AND note = '{NOTE}'")
