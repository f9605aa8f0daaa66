"""Notify's queries. No commits here: the unit of work commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, literal, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from notify.models import (
    callback_attempts,
    callback_tasks,
    lookup_codes,
    message_attempts,
    messages,
    questionnaire_answers,
    rating_tokens,
    ratings,
    recipients,
    timeline,
)
from shared.db import case_status, in_literal

# The states the sender picks up: the partial index ``messages_due`` is on exactly these.
DUE_STATES = ("queued", "held", "sending", "failed")

# --------------------------------------------------------------------------- recipients


async def get_recipient(session: AsyncSession, case_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(recipients).where(recipients.c.case_id == case_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row else None


# --------------------------------------------------------------------------- messages


# Run with a list of rows: compiled once, whatever the count (a multi-row VALUES would be
# compiled again for every new count).
_INSERT_MESSAGES = (
    pg_insert(messages).on_conflict_do_nothing(constraint="messages_event_recipient_channel").returning(messages.c.id)
)


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Queue messages; a redelivered event finds its (event, recipient, channel) rows and adds none."""
    if not rows:
        return 0
    result = await session.execute(_INSERT_MESSAGES, list(rows))
    return len(result.all())


def claim_statement(now: datetime, limit: int) -> Select:
    """Due messages, locked with SKIP LOCKED so replicas share the work (``claim_due``)."""
    # The states as constants: the sender's plan must read the partial index ``messages_due``,
    # never every message (see shared.db.in_literal).
    return (
        select(messages)
        .where(in_literal(messages.c.state, DUE_STATES), messages.c.next_attempt_at <= now)
        .order_by(messages.c.next_attempt_at, messages.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[dict[str, Any]]:
    """Due messages, locked for this round's transaction (``claim_statement``); the round then
    puts some off and leases the rest (``lease_messages``) before it commits."""
    rows = await session.execute(claim_statement(now, limit))
    # Sent in the order the messages were queued (a citizen reads them in turn).
    return sorted((dict(r) for r in rows.mappings()), key=lambda r: r["id"])


_LEASE = text("""
UPDATE messages SET state = 'sending', next_attempt_at = :lease_until WHERE id = ANY(CAST(:ids AS bigint[]))
""")


async def lease_messages(session: AsyncSession, ids: Sequence[int], lease_until: datetime) -> None:
    """The messages this round sends, leased until ``lease_until``: no other round takes them
    meanwhile, and a sender that dies mid-send leaves them to be sent again after it."""
    if ids:
        await session.execute(_LEASE, {"ids": list(ids), "lease_until": lease_until})


async def next_due(session: AsyncSession) -> datetime | None:
    """When the next message falls due (the earliest of those the sender picks up; the partial
    index ``messages_due`` answers it), or None when none waits."""
    stmt = select(func.min(messages.c.next_attempt_at)).where(in_literal(messages.c.state, DUE_STATES))
    return (await session.execute(stmt)).scalar()


async def recent_sends_many(session: AsyncSession, keys: set[tuple[str, str]], since: datetime) -> dict[tuple[str, str], list[datetime]]:
    """When each (recipient, channel) was last sent to, since ``since`` (for the rate limit)."""
    if not keys:
        return {}
    rows = await session.execute(
        select(messages.c.recipient, messages.c.channel, messages.c.sent_at).where(
            tuple_(messages.c.recipient, messages.c.channel).in_(sorted(keys)), messages.c.sent_at > since
        )
    )
    found: dict[tuple[str, str], list[datetime]] = {}
    for recipient, channel, sent_at in rows:
        found.setdefault((recipient, channel), []).append(sent_at)
    return found


async def phones_of(session: AsyncSession, case_ids: set[str]) -> dict[str, bytes]:
    """The sealed phones of these cases' citizens (those that have one)."""
    if not case_ids:
        return {}
    rows = await session.execute(
        select(recipients.c.case_id, recipients.c.phone_enc).where(
            recipients.c.case_id.in_(sorted(case_ids)), recipients.c.phone_enc.is_not(None)
        )
    )
    return {case_id: phone for case_id, phone in rows}


# A round's changes as one statement each (arrays, one element per message; each message
# once per round, since a claim hands it to one round only). A per-row executemany cost a
# statement per message in PostgreSQL and a bind per message here.
_PUT_OFF = text("""
UPDATE messages AS m SET state = v.state, next_attempt_at = v.next_attempt_at, last_error = v.last_error
FROM unnest(CAST(:message_id AS bigint[]), CAST(:state AS text[]), CAST(:next_attempt_at AS timestamptz[]),
            CAST(:last_error AS text[])) AS v(id, state, next_attempt_at, last_error)
WHERE m.id = v.id
""")
# A send's outcome; the times it does not set stay as they are (a delivery receipt may have
# come in meanwhile).
_OUTCOME = text("""
UPDATE messages AS m
SET state = v.state, attempts = v.attempts, last_error = v.last_error,
    sent_at = coalesce(v.sent_at, m.sent_at), delivered_at = coalesce(v.delivered_at, m.delivered_at),
    next_attempt_at = coalesce(v.next_attempt_at, m.next_attempt_at)
FROM unnest(CAST(:message_id AS bigint[]), CAST(:state AS text[]), CAST(:attempts AS int[]), CAST(:last_error AS text[]),
            CAST(:sent_at AS timestamptz[]), CAST(:delivered_at AS timestamptz[]), CAST(:next_attempt_at AS timestamptz[]))
     AS v(id, state, attempts, last_error, sent_at, delivered_at, next_attempt_at)
WHERE m.id = v.id
""")
_ATTEMPTS = text("""
INSERT INTO message_attempts (message_id, attempt, at, outcome, status_code, error)
SELECT * FROM unnest(CAST(:message_id AS bigint[]), CAST(:attempt AS int[]), CAST(:at AS timestamptz[]),
                     CAST(:outcome AS text[]), CAST(:status_code AS int[]), CAST(:error AS text[]))
""")


def _names(statement: Any) -> tuple[str, ...]:
    return tuple(statement.compile().params)


_PUT_OFF_NAMES, _OUTCOME_NAMES, _ATTEMPTS_NAMES = _names(_PUT_OFF), _names(_OUTCOME), _names(_ATTEMPTS)


def _arrays(rows: Sequence[dict[str, Any]], names: tuple[str, ...]) -> dict[str, list[Any]]:
    """The rows as one list per bind parameter."""
    return {name: [row[name] for row in rows] for name in names}


async def put_off_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await session.execute(_PUT_OFF, _arrays(rows, _PUT_OFF_NAMES))


async def record_outcomes(session: AsyncSession, changes: Sequence[dict[str, Any]], attempts: Sequence[dict[str, Any]]) -> None:
    """Each message's new state and its attempt (``message_attempts``)."""
    if changes:
        await session.execute(_OUTCOME, _arrays(changes, _OUTCOME_NAMES))
        await session.execute(_ATTEMPTS, _arrays(attempts, _ATTEMPTS_NAMES))


async def set_message(session: AsyncSession, message_id: int, **values: Any) -> None:
    await session.execute(update(messages).where(messages.c.id == message_id).values(**values))


async def messages_of_case(session: AsyncSession, case_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(select(messages).where(messages.c.case_id == case_id).order_by(messages.c.id))
    return [dict(r) for r in rows.mappings()]


async def inbox(session: AsyncSession, recipient: str, *, after_id: int, limit: int, unread: bool) -> list[dict[str, Any]]:
    query = select(messages).where(
        messages.c.recipient == recipient, messages.c.channel == "inbox", messages.c.state == "delivered",
        messages.c.id > after_id,
    )
    if unread:
        query = query.where(messages.c.read_at.is_(None))
    rows = await session.execute(query.order_by(messages.c.id).limit(limit))
    return [dict(r) for r in rows.mappings()]


async def mark_read(session: AsyncSession, recipient: str, message_id: int, at: datetime) -> bool:
    result = await session.execute(
        update(messages)
        .where(messages.c.id == message_id, messages.c.recipient == recipient, messages.c.channel == "inbox")
        .values(read_at=func.coalesce(messages.c.read_at, at))
        .returning(messages.c.id)
    )
    return result.first() is not None


async def webhooks(session: AsyncSession, *, state: str | None, after_id: int, limit: int) -> list[dict[str, Any]]:
    query = select(messages).where(messages.c.channel == "hotline", messages.c.id > after_id)
    if state:
        query = query.where(messages.c.state == state)
    rows = await session.execute(query.order_by(messages.c.id).limit(limit))
    return [dict(r) for r in rows.mappings()]


async def get_message(session: AsyncSession, message_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(messages).where(messages.c.id == message_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row else None


async def attempts_of(session: AsyncSession, message_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in message_ids}
    if not message_ids:
        return out
    rows = await session.execute(
        select(message_attempts).where(message_attempts.c.message_id.in_(list(message_ids)))
        .order_by(message_attempts.c.message_id, message_attempts.c.id)
    )
    for r in rows.mappings():
        out[r["message_id"]].append(dict(r))
    return out


# --------------------------------------------------------------------------- callbacks


async def insert_callback(session: AsyncSession, **values: Any) -> None:
    await session.execute(pg_insert(callback_tasks).values(**values).on_conflict_do_nothing(constraint="callback_tasks_case_round"))


async def supersede_callbacks(session: AsyncSession, case_id: str, before_round: int) -> None:
    await session.execute(
        update(callback_tasks)
        .where(callback_tasks.c.case_id == case_id, callback_tasks.c.round < before_round, callback_tasks.c.state == "open")
        .values(state="superseded", updated_at=func.now())
    )


async def get_callback(session: AsyncSession, task_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(callback_tasks).where(callback_tasks.c.id == task_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row else None


async def callbacks_of_case(session: AsyncSession, case_id: str) -> list[dict[str, Any]]:
    rows = await session.execute(select(callback_tasks).where(callback_tasks.c.case_id == case_id).order_by(callback_tasks.c.round))
    return [dict(r) for r in rows.mappings()]


async def callback_queue(
    session: AsyncSession, *, now: datetime, view: str, township: str | None,
    after: tuple[datetime, int] | None, limit: int, state: str = "open", townships: list[str] | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    # The state as a constant: open callbacks are read through the partial index on them.
    query = select(callback_tasks).where(in_literal(callback_tasks.c.state, (state,)))
    # The views of domain.callback_view: callable from opens_at, overdue from due_at on.
    if state == "open":
        if view == "due":
            query = query.where(callback_tasks.c.opens_at <= now)
        elif view == "overdue":
            query = query.where(callback_tasks.c.due_at <= now)
        elif view == "today":
            query = query.where(callback_tasks.c.opens_at <= now, callback_tasks.c.due_at > now)
    if township:
        query = query.where(callback_tasks.c.township == township)
    if townships is not None:  # the reader's own townships (shared.scope); None: all
        query = query.where(callback_tasks.c.township.in_(townships))
    if after is not None:
        due_at, task_id = after
        query = query.where(
            or_(callback_tasks.c.due_at > due_at, and_(callback_tasks.c.due_at == due_at, callback_tasks.c.id > task_id))
        )
    rows = await session.execute(query.order_by(callback_tasks.c.due_at, callback_tasks.c.id).limit(limit))
    return [dict(r) for r in rows.mappings()]


async def callback_counts(session: AsyncSession, *, now: datetime) -> list[dict[str, Any]]:
    """Open callbacks per township: due now (callable, incl. overdue), overdue (past due_at), upcoming."""
    due = func.count().filter(callback_tasks.c.opens_at <= now)
    overdue = func.count().filter(callback_tasks.c.due_at <= now)
    upcoming = func.count().filter(callback_tasks.c.opens_at > now)
    rows = await session.execute(
        select(callback_tasks.c.township, due.label("due"), overdue.label("overdue"), upcoming.label("upcoming"))
        .where(in_literal(callback_tasks.c.state, ("open",)))
        .group_by(callback_tasks.c.township)
        .order_by(callback_tasks.c.township)
    )
    return [dict(r) for r in rows.mappings()]


async def record_callback_attempt(session: AsyncSession, **values: Any) -> bool:
    result = await session.execute(pg_insert(callback_attempts).values(**values).on_conflict_do_nothing().returning(callback_attempts.c.attempt))
    return result.first() is not None


async def update_callback(session: AsyncSession, task_id: int, **values: Any) -> None:
    await session.execute(update(callback_tasks).where(callback_tasks.c.id == task_id).values(**values, updated_at=func.now()))


# --------------------------------------------------------------------------- tokens and ratings


async def insert_token(session: AsyncSession, **values: Any) -> bool:
    result = await session.execute(
        pg_insert(rating_tokens).values(**values).on_conflict_do_nothing().returning(rating_tokens.c.token_hash)
    )
    return result.first() is not None


async def get_token(session: AsyncSession, token_hash: str, purpose: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            select(rating_tokens).where(rating_tokens.c.token_hash == token_hash, rating_tokens.c.purpose == purpose)
        )
    ).mappings().first()
    return dict(row) if row else None


async def use_token(session: AsyncSession, token_hash: str, at: datetime) -> bool:
    """Spend a token; False when another request spent it first (the guard against a race)."""
    result = await session.execute(
        update(rating_tokens)
        .where(rating_tokens.c.token_hash == token_hash, rating_tokens.c.used_at.is_(None))
        .values(used_at=at)
        .returning(rating_tokens.c.token_hash)
    )
    return result.first() is not None


async def insert_rating(session: AsyncSession, **values: Any) -> bool:
    """False when the case already has a rating for that round (one per round)."""
    result = await session.execute(pg_insert(ratings).values(**values).on_conflict_do_nothing().returning(ratings.c.case_id))
    return result.first() is not None


async def get_rating(session: AsyncSession, case_id: str, round_: int) -> dict[str, Any] | None:
    row = (
        await session.execute(select(ratings).where(ratings.c.case_id == case_id, ratings.c.round == round_))
    ).mappings().first()
    return dict(row) if row else None


async def insert_answers(session: AsyncSession, **values: Any) -> bool:
    result = await session.execute(
        pg_insert(questionnaire_answers).values(**values).on_conflict_do_nothing().returning(questionnaire_answers.c.case_id)
    )
    return result.first() is not None



# --------------------------------------------------------------------------- the citizen's page


async def add_timeline(session: AsyncSession, entries: Sequence[dict[str, Any]]) -> None:
    """The citizen's timeline entries (a redelivered event adds none)."""
    if entries:
        await session.execute(pg_insert(timeline).on_conflict_do_nothing(index_elements=["event_id"]), list(entries))


async def timeline_and_status(session: AsyncSession, case_id: str) -> tuple[list[dict[str, Any]], str | None]:
    """The case's timeline and its status in one statement, so of one moment: read one after
    the other, a batch committed between them could show a status the timeline does not
    reach yet (the citizen reading 已评价 with no rating on the page)."""
    status = select(case_status.c.status).where(case_status.c.case_id == case_id).scalar_subquery()
    one = select(literal(1).label("one")).subquery()  # a row even when the timeline has none
    rows = await session.execute(
        select(status.label("status_now"), timeline)
        .select_from(one.outerjoin(timeline, timeline.c.case_id == case_id))
        .order_by(timeline.c.occurred_at, timeline.c.event_id)
    )
    entries, status_now = [], None
    for row in rows.mappings():
        status_now = row["status_now"]
        if row["event_id"] is not None:
            entries.append({column.name: row[column.name] for column in timeline.columns})
    return entries, status_now


async def recipient_by_tracking_no(session: AsyncSession, tracking_no: str) -> dict[str, Any] | None:
    row = (await session.execute(select(recipients).where(recipients.c.tracking_no == tracking_no).limit(1))).mappings().first()
    return dict(row) if row else None


async def codes_since(session: AsyncSession, case_id: str, since: datetime) -> list[datetime]:
    rows = await session.execute(
        select(lookup_codes.c.issued_at).where(lookup_codes.c.case_id == case_id, lookup_codes.c.issued_at > since)
    )
    return [r for (r,) in rows]


async def latest_code(session: AsyncSession, case_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(lookup_codes).where(lookup_codes.c.case_id == case_id).order_by(lookup_codes.c.id.desc()).limit(1)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).mappings().first()
    return dict(row) if row else None


async def insert_code(session: AsyncSession, **values: Any) -> None:
    await session.execute(pg_insert(lookup_codes).values(**values))


async def update_code(session: AsyncSession, code_id: int, **values: Any) -> None:
    await session.execute(update(lookup_codes).where(lookup_codes.c.id == code_id).values(**values))
