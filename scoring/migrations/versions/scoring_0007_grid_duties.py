"""Scoring: grid points version N+1 — the grid duties of issue #23 count in the grid
worker's monthly score: household visits (入户走访, 4 points, cap 80), mailbox openings
(定时开箱取信, 2, cap 18) and proxy services (帮办代办, 6, cap 90).

Added as a new version over whatever is current (points are never edited): the newest
version's points and caps are kept and the three new kinds added to them, so an operator's
own table keeps its values and gains the new kinds. Frozen copy of scoring.grid's defaults
for those kinds at this migration.

Revision ID: scoring_0007
"""

from alembic import op

revision = "scoring_0007"
down_revision = "scoring_0006"
branch_labels = None
depends_on = None

NOTE = "网格职责: 入户走访 / 定时开箱取信 / 帮办代办 计分"


def upgrade() -> None:
    op.execute(
        "INSERT INTO grid_point_versions (version, points, caps, note, created_by) "
        "SELECT latest.version + 1, "
        """latest.points || '{"visit": 4, "mailbox_opened": 2, "proxy_service": 6}'::jsonb, """
        """latest.caps || '{"visit": 80, "mailbox_opened": 18, "proxy_service": 90}'::jsonb, """
        f"'{NOTE}', 'migration' "
        "FROM (SELECT version, points, caps FROM grid_point_versions ORDER BY version DESC LIMIT 1) AS latest"
    )


def downgrade() -> None:
    op.execute(f"DELETE FROM grid_point_versions WHERE created_by = 'migration' AND note = '{NOTE}'")
