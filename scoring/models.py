"""Scoring's own tables (its own database). The shared plumbing tables — outbox, inbox,
dead letters, case_status — come from the shared migration branch.

Two kinds of table live here:
- **facts** (``FACT_TABLES``), built only from events on the topic by the handlers, keyed so
  that applying an event twice changes nothing; a rebuild empties them and replays the topic;
- **configuration** (weights, grid points, figure formats) and **published scores**, which are data people
  entered or published: a rebuild keeps them.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

# One row per case: where it is, what it is about, what became of it (case level).
case_facts = Table(
    "case_facts",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("tracking_no", String(32)),
    Column("channel", String(16)),
    Column("county", String(64)),
    Column("township", String(64)),
    Column("grid", String(64)),
    Column("subject_class", String(32)),
    Column("category", String(8)),
    Column("received_at", DateTime(timezone=True)),
    Column("accepted_at", DateTime(timezone=True)),
    Column("rejected_at", DateTime(timezone=True)),
    Column("merged_into", String(64)),
    Column("solved_on_spot", Boolean, nullable=False, server_default="false"),
    Column("resolved_at", DateTime(timezone=True)),
    Column("solved", Boolean),
    Column("closed_at", DateTime(timezone=True)),
    # The latest redo round seen (重办): 0 until the case is reopened.
    Column("current_round", Integer, nullable=False, server_default="0"),
    # 首问负责制: the unit that first learned of the case (scoring_0008), kept from case.received.
    Column("first_unit", String(64)),
    Index("case_facts_first_unit", "first_unit", "received_at"),
)

# One row per dispatch order (交办单): the unit's own clocks and outcome.
unit_orders = Table(
    "unit_orders",
    metadata,
    Column("order_no", String(64), primary_key=True),
    Column("case_id", String(64), nullable=False, index=True),
    Column("unit", String(64), nullable=False, index=True),
    Column("unit_name", String(200)),
    Column("role", String(8), nullable=False),
    Column("redo_round", Integer, nullable=False),
    Column("dispatched_at", DateTime(timezone=True), nullable=False),
    Column("signed_at", DateTime(timezone=True)),
    Column("returned_at", DateTime(timezone=True)),
    Column("resolved_at", DateTime(timezone=True)),
    Column("solved", Boolean),
    # Who signed, returned, answered (the events' actors; scoring_0006): the person who handled
    # the order (承办人, 个人绩效) is whoever answered it, else returned it, else signed it.
    Column("signed_by", String(128)),
    Column("returned_by", String(128)),
    Column("resolved_by", String(128)),
    # Set by sla.breached on the unit's sign / resolve clock whose deadline fell before the
    # unit signed / resolved (compared on event times, whatever order the events came in).
    Column("sign_late", Boolean, nullable=False, server_default="false"),
    Column("resolve_late", Boolean, nullable=False, server_default="false"),
)

# Yellow cards (sla.warning level yellow) and red cards (sla.breached), one row per event.
sla_cards = Table(
    "sla_cards",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("case_id", String(64), nullable=False, index=True),
    Column("unit", String(64)),
    Column("clock", String(24), nullable=False),
    Column("level", String(8), nullable=False),  # yellow | red
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
)

# The citizen's rating per case and round (questionnaires do not count for 满意率).
case_ratings = Table(
    "case_ratings",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("round", Integer, primary_key=True),
    Column("rating", String(8), nullable=False),
    Column("source", String(16), nullable=False),
    Column("units", JSONB, nullable=False, server_default="[]"),
    Column("rated_at", DateTime(timezone=True), nullable=False),
)

# 乡呼县应 / 吹哨报到: who called whom on which case.
calls = Table(
    "calls",
    metadata,
    Column("call_id", String(64), primary_key=True),
    Column("case_id", String(64), nullable=False, index=True),
    Column("township", String(64), nullable=False),  # the case's township
    # Who called: the township, or the village or grid that blew the whistle from below
    # (网格吹哨); it rates the departments it called and the departments' ratings are of it.
    Column("caller", String(64), nullable=False),
    Column("units", JSONB, nullable=False),
    Column("kind", String(16), nullable=False),  # county_called | whistle
    Column("called_at", DateTime(timezone=True), nullable=False),
)

# Two-way evaluation (县乡履职双向考核评价): one rating per direction, case, call, round and pair.
unit_ratings = Table(
    "unit_ratings",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("direction", String(32), nullable=False),
    Column("case_id", String(64), nullable=False),
    Column("call_id", String(64), nullable=False),
    Column("round", Integer, nullable=False),
    Column("rater_unit", String(64), nullable=False),
    Column("rated_unit", String(64), nullable=False),
    Column("rating", String(8)),
    Column("score", Integer),
    Column("justified", Boolean),
    Column("complete", Boolean),
    Column("comment", Text),
    Column("rated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("direction", "case_id", "call_id", "round", "rater_unit", "rated_unit", name="unit_ratings_once"),
)

# Grid workers' activity, one row per grid.activity event.
grid_activity = Table(
    "grid_activity",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("worker_id", String(64), nullable=False),
    Column("grid", String(64), nullable=False),
    Column("township", String(64)),
    Column("county", String(64)),
    Column("kind", String(24), nullable=False),
    Column("count", Integer, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
)

FACT_TABLES = (case_facts, unit_orders, sla_cards, case_ratings, calls, unit_ratings, grid_activity)

# Composite weights, versioned: a new version per change, never an update.
weight_versions = Table(
    "weight_versions",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("response", Numeric(9, 4), nullable=False),
    Column("resolution", Numeric(9, 4), nullable=False),
    Column("satisfaction", Numeric(9, 4), nullable=False),
    Column("township_rating", Numeric(9, 4), nullable=False),
    Column("note", Text),
    Column("created_by", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Grid-worker points per activity and monthly caps, versioned like the weights.
grid_point_versions = Table(
    "grid_point_versions",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("points", JSONB, nullable=False),
    Column("caps", JSONB, nullable=False),
    Column("note", Text),
    Column("created_by", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# How each county publishes its figures (scoring_0005): rounding (half_up | truncate) and
# decimals, versioned like the weights — a change is a new row; a county's current format is
# its newest row, a county without one follows the nearest place above it, else the default.
figure_formats = Table(
    "figure_formats",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("county", String(64), nullable=False, index=True),
    Column("rounding", String(16), nullable=False),
    Column("places", Integer, nullable=False),
    Column("note", Text),
    Column("created_by", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Scores as published: each says which weights version made it.
published_scores = Table(
    "published_scores",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("county", String(64), nullable=False),
    Column("period_kind", String(8), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("unit", String(64), nullable=False),
    Column("score", String(16)),  # display, e.g. "91.25"
    Column("score_exact", String(64)),  # the exact fraction "p/q"
    Column("weights_version", Integer, nullable=False),
    Column("published_by", String(128)),
    Column("published_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("county", "period_kind", "period_start", "period_end", "unit", "weights_version", name="published_once"),
)

# Bulletins as issued on schedule (scoring_0003): what the county was sent, unchanged by later events.
issued_bulletins = Table(
    "issued_bulletins",
    metadata,
    Column("county", String(64), primary_key=True),
    Column("kind", String(8), primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("label", String(32), nullable=False),
    Column("document", JSONB, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
