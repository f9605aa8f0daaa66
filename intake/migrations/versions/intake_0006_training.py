"""Intake: the model learns from the centre — labelled examples, model versions, and why each
appeal was routed where it went.

- ``appeals.routing``: the model's explanation (deciding n-grams, probability, version,
  catalogue line) shown to staff on the case;
- ``training_examples``: every manual triage and every upheld return, with who, when and why;
- ``model_versions``: every retrained candidate, its evaluation, and whether it was promoted.

Revision ID: intake_0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "intake_0006"
down_revision = "intake_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("appeals", sa.Column("routing", JSONB))
    op.create_table(
        "training_examples",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("subject_class", sa.String(32), nullable=False),
        sa.Column("proposed_class", sa.String(32)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "model_versions",
        sa.Column("version", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("examples_upto", sa.BigInteger, nullable=False),
        sa.Column("trained_on", sa.BigInteger, nullable=False),
        sa.Column("evaluation", JSONB, nullable=False),
        sa.Column("promoted", sa.Boolean, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("model_versions")
    op.drop_table("training_examples")
    op.drop_column("appeals", "routing")
