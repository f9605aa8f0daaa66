"""Notify's own tables (its own database). The shared plumbing tables — outbox, inbox,
dead letters, case_status — come from the shared migration branch."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()

# Who to tell about a case, as learned from the topic. The phone is kept encrypted under
# notify's own key ring (context "notify.recipients.phone"), never in clear.
recipients = Table(
    "recipients",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("tracking_no", String(32)),
    Column("channel", String(16)),
    Column("external_ref", String(64)),
    Column("citizen_ref", String(64)),
    Column("phone_enc", Text),
    Column("phone_masked", String(16)),
    Column("township", String(64)),
    Column("urgency", String(16)),
    Column("round", Integer, nullable=False, server_default="0"),
    Column("units", JSONB, nullable=False, server_default="[]"),  # units handling the current round
    Column("unit_names", JSONB, nullable=False, server_default="{}"),
    Column("first_unit", String(64)),  # 首问负责制: copied on the case's cards and urgings (notify_0004)
    # What the citizen's page shows before the rating (notify_0005): the latest 答复 and 公示.
    Column("answer", Text),
    Column("public_summary", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

Index("recipients_tracking_no", recipients.c.tracking_no)

# The citizen's public timeline, kept from the topic (``shared.lifecycle.timeline_entry``,
# the rule intake's timeline follows too): what the look-up with an SMS code shows.
timeline = Table(
    "timeline",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("case_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("label", Text, nullable=False),
    Column("detail", Text),
    Index("timeline_case", "case_id", "occurred_at"),
)

# One-time look-up codes sent by SMS to an appeal's phone (only the hash is stored).
lookup_codes = Table(
    "lookup_codes",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("case_id", String(64), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("used_at", DateTime(timezone=True)),
    Index("lookup_codes_case", "case_id", "issued_at"),
)

# 回访: one task per case and round.
callback_tasks = Table(
    "callback_tasks",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("case_id", String(64), nullable=False),
    Column("round", Integer, nullable=False),
    Column("township", String(64)),
    Column("tracking_no", String(32)),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    # The callback's window (shared.callback): calling from opens_at, late from due_at.
    Column("opens_at", DateTime(timezone=True), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("state", String(16), nullable=False, server_default="open"),  # open|done|unreachable|superseded
    Column("rating", String(8)),
    Column("comment", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("case_id", "round", name="callback_tasks_case_round"),
)

callback_attempts = Table(
    "callback_attempts",
    metadata,
    Column("task_id", BigInteger, ForeignKey("callback_tasks.id"), primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("reached", Boolean, nullable=False),
    Column("rating", String(8)),
    Column("comment", Text),
    Column("operator", String(128), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

# One-time links (rating, questionnaire): only the hash is stored.
rating_tokens = Table(
    "rating_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("case_id", String(64), nullable=False),
    Column("round", Integer, nullable=False),
    Column("purpose", String(16), nullable=False),  # rating|questionnaire
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    UniqueConstraint("event_id", "purpose", name="rating_tokens_event_purpose"),
)

# At most one rating per case and round leaves notify (case.rated), whatever its source.
ratings = Table(
    "ratings",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("round", Integer, primary_key=True),
    Column("rating", String(8), nullable=False),
    Column("source", String(16), nullable=False),
    Column("comment", Text),
    Column("rated_at", DateTime(timezone=True), nullable=False),
)

questionnaire_answers = Table(
    "questionnaire_answers",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("round", Integer, primary_key=True),
    Column("answers", JSONB, nullable=False),
    Column("answered_at", DateTime(timezone=True), nullable=False),
)

# Every message on every channel, the in-app inbox and the 12345 webhook deliveries
# (channel "hotline"; state "dead" is the dead-letter store). One per event, recipient and channel.
messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("case_id", String(64)),
    Column("recipient", String(160), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("kind", String(48), nullable=False),
    Column("body_enc", Text, nullable=False),  # rendered text, encrypted (may hold a rating link)
    Column("payload", JSONB),  # the webhook's JSON body (no personal data)
    Column("urgent", Boolean, nullable=False, server_default="false"),
    Column("state", String(12), nullable=False, server_default="queued"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("sent_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("read_at", DateTime(timezone=True)),
    # The W3C traceparent of the event's handling (shared.tracing), NULL when not traced:
    # the sender sends under it, so the outbound call joins the appeal's trace (notify_0006).
    Column("traceparent", String(64)),
    UniqueConstraint("event_id", "recipient", "channel", name="messages_event_recipient_channel"),
)

message_attempts = Table(
    "message_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("message_id", BigInteger, ForeignKey("messages.id"), nullable=False, index=True),
    Column("attempt", Integer, nullable=False),  # within its series (an operator's re-send starts a new one)
    Column("at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(12), nullable=False),  # sent|delivered|failed|dead
    Column("status_code", Integer),
    Column("error", Text),
)
