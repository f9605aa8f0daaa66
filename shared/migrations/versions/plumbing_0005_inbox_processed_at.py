"""The inbox is pruned by age (shared.inbox): an index on ``processed_events.processed_at``, so
each pruning statement finds the oldest few thousand rows without reading the table.

A btree, not BRIN: ids are deleted from the old end and the freed space is reused by new
rows, so the table's physical order stops following ``processed_at`` and BRIN's page ranges
would all end up spanning old and new times. Inserts append at the btree's right edge.

On a large existing inbox this builds the index inside the migration's transaction (writes
to the table wait meanwhile); an operator who cannot afford that creates it beforehand with
``CREATE INDEX CONCURRENTLY processed_events_processed_at ON processed_events (processed_at)``
and this migration then finds it there.

Revision ID: plumbing_0005
Revises: plumbing_0004
"""

from alembic import op

revision = "plumbing_0005"
down_revision = "plumbing_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS processed_events_processed_at ON processed_events (processed_at)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS processed_events_processed_at")
