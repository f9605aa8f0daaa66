"""Intake's tables (its own database).

Personal data (PIPL): phone, ID number, the contact's name and the precise address are
stored only encrypted (``*_enc``, AES-GCM tokens with a key id); ``phone_hash`` is a keyed
hash for "my appeals" look-ups; ``phone_masked`` is what lists show.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Identity,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()

appeals = Table(
    "appeals",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("tracking_no", String(32), nullable=False, unique=True),
    Column("channel", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(24), nullable=False),
    # contact (encrypted) and look-up
    Column("contact_name_enc", Text, nullable=False),
    Column("phone_enc", Text, nullable=False),
    Column("phone_hash", String(64), nullable=False),
    Column("phone_masked", String(16), nullable=False),
    Column("id_number_enc", Text),
    # where
    Column("address_enc", Text),
    Column("street", String(200)),
    Column("lat", Float),
    Column("lng", Float),
    Column("county", String(64)),
    Column("township", String(64)),
    Column("village", String(64)),
    Column("grid", String(64)),
    # what
    Column("category", String(8)),
    Column("subject_class", String(32)),
    Column("urgency", String(16)),
    Column("confidence", Float),
    Column("triage", String(16), nullable=False),  # auto | needed | manual
    # Why the model proposed the subject (intake_0006): words, probability, model version, catalogue line.
    Column("routing", JSONB),
    Column("reject_reason", Text),
    Column("merged_into", String(64)),
    Column("solved_on_spot", Boolean, nullable=False, server_default="false"),
    # where it came from
    Column("external_ref", String(64)),
    Column("reporter_id", String(64)),
    Column("attachments", JSONB, nullable=False, server_default="[]"),
    # 首问负责制 and 谁接待、谁负责 (intake_0008): the unit that first learned of it, the person
    # who received it at a window, and a simple window appeal's 1-hour deadline.
    Column("first_unit", String(64)),
    Column("received_by", String(128)),
    Column("resolve_due_at", DateTime(timezone=True)),
    # who handles it, from the topic (intake_0003): the current unit, and every unit ever asked
    Column("handler_unit", String(64)),
    Column("handler_units", ARRAY(String(64)), nullable=False, server_default="{}"),
    Column("idempotency_key", String(128), unique=True),
    Column("request_hash", String(64)),
    Column("accept_due_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("channel", "external_ref", name="appeals_channel_external_ref"),
    Index("appeals_phone_hash", "phone_hash", "created_at"),
    # partial (open, unmerged) in the migration: see intake_0001
    Index("appeals_open_nearby", "lat", "lng", "created_at"),
    Index("appeals_open_township", "township", "created_at"),
    Index("appeals_first_unit", "first_unit"),
)

# The citizen's timeline, fed from the topic: what every service did with the case.
timeline = Table(
    "timeline",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    # The order it happened (intake_0005): numbered as written, and a case's rows are written
    # in lifecycle order (filing in order, then the case's partition in topic order). Times
    # tie often — one command emits several events in the same instant.
    Column("seq", BigInteger, Identity(), nullable=False),
    Column("case_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("label", Text, nullable=False),
    Column("detail", Text),
    # The photos the step carries (attachment ids; intake_0009): a survey's (现场勘查).
    Column("attachments", JSONB, nullable=False, server_default="[]"),
    Index("timeline_case_seq", "case_id", "seq"),
)

# Nonces of signed machine requests, so a replayed request is refused (see shared.signing).
request_nonces = Table(
    "request_nonces",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("nonce", String(128), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

# Uploaded photos and PDFs: the bytes live in the attachment store, keyed by their SHA-256,
# so the same file uploaded twice is stored once and gets the same id.
attachments = Table(
    "attachments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("content_type", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every view of a citizen's contact details in clear (intake_0004): PIPL asks who saw what, and why.
contact_views = Table(
    "contact_views",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("case_id", String(64), nullable=False),
    Column("actor_id", String(128), nullable=False),
    Column("role", String(32), nullable=False),
    Column("unit", String(64)),
    Column("reason", Text, nullable=False),
    Column("viewed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("contact_views_case", "case_id", "viewed_at"),
    Index("contact_views_actor", "actor_id", "viewed_at"),
)

# The county's own labelled appeals (intake_0006): every manual triage and every upheld
# return (退单 upheld: the owner was wrong) is an example the model retrains on. Who, when
# and why are kept, so a wrong label can be traced to the decision that made it.
training_examples = Table(
    "training_examples",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),  # oldest first: a version learns a prefix
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),  # the decision; a replay adds nothing
    Column("case_id", String(64), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("subject_class", String(32), nullable=False),
    Column("proposed_class", String(32)),  # what intake had proposed (None: nothing)
    Column("source", String(16), nullable=False),  # manual_triage | return_upheld
    Column("actor_id", String(128), nullable=False),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every trained candidate (intake_0006) with its evaluation; the newest promoted one routes.
model_versions = Table(
    "model_versions",
    metadata,
    Column("version", BigInteger, Identity(), primary_key=True),
    Column("examples_upto", BigInteger, nullable=False),  # it learnt training_examples with id <= this
    Column("trained_on", BigInteger, nullable=False),  # demo + county examples
    Column("evaluation", JSONB, nullable=False),  # the candidate's, and the current one's on the same examples
    Column("promoted", Boolean, nullable=False),
    Column("trigger", String(16), nullable=False),  # command | schedule
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# ------------------------------------------------------------------ grid duties (intake_0007)
# The grid's household register (结一联十): who keeps which household, which are flagged
# 困难/重点监测. No names or addresses: a household is its ref in the village's own register.
grid_households = Table(
    "grid_households",
    metadata,
    Column("household_ref", String(64), primary_key=True),
    Column("grid", String(64), nullable=False, index=True),
    Column("keeper_id", String(128)),  # the grid worker who keeps it
    Column("organiser_id", String(128), index=True),  # its 联户长 (one for about ten households)
    Column("difficult", Boolean, nullable=False, server_default="false"),  # 困难户
    Column("monitored", Boolean, nullable=False, server_default="false"),  # 重点监测户
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The register's history (intake_0010): one row per change of a household's grid, keeper,
# organiser or flags — who, when it took effect, when it was recorded. A month's visit duty
# is judged against the versions in force in that month (``grid_rules.households_in_month``).
grid_household_versions = Table(
    "grid_household_versions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("household_ref", String(64), nullable=False),
    Column("grid", String(64), nullable=False, index=True),
    Column("keeper_id", String(128)),
    Column("organiser_id", String(128)),
    Column("difficult", Boolean, nullable=False),
    Column("monitored", Boolean, nullable=False),
    Column("changed_by", String(128), nullable=False),
    Column("effective_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("grid_household_versions_ref", "household_ref", "effective_at", "id"),
)

# Each visit, mailbox opening and proxy service, as its grid.activity event says (the rules of
# missed duties read these; scoring counts the events).
grid_duties = Table(
    "grid_duties",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("kind", String(16), nullable=False),  # visit | mailbox_opened | proxy_service
    Column("grid", String(64), nullable=False),
    Column("worker_id", String(128), nullable=False),
    Column("subject", String(64)),  # household ref (visit), item code (proxy_service)
    Column("at", DateTime(timezone=True), nullable=False),
    Column("detail", JSONB, nullable=False, server_default="{}"),
    Index("grid_duties_grid_kind_at", "grid", "kind", "at"),
)

# When each grid's mailbox is opened (定时开箱取信): ISO weekdays, set by the village or township.
grid_mailbox_schedules = Table(
    "grid_mailbox_schedules",
    metadata,
    Column("grid", String(64), primary_key=True),
    Column("weekdays", ARRAY(BigInteger), nullable=False),
    Column("updated_by", String(128), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Warnings already raised, so a check run twice warns once.
grid_warnings = Table(
    "grid_warnings",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("grid", String(64), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("period", String(7), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("kind", "grid", "subject", "period", name="grid_warnings_once"),
)
