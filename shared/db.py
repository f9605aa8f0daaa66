"""Database plumbing: engine and session factory, the unit of work, the shared tables.

Only the unit of work commits. Events a service wants to publish are written to the
outbox *in the same transaction* as the state change they describe (transactional
outbox); the relay publishes them after the commit.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    ColumnElement,
    Text,
    bindparam,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shared import tracing
from shared.cloudevents import to_message
from shared.events import EventBase
from shared.outage import connection_broken

# Tables every service database has, created by the shared Alembic branch "plumbing".
PLUMBING = MetaData()

outbox = Table(
    "outbox",
    PLUMBING,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("event_type", String(64), nullable=False),
    Column("key", String(128), nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # NULL until published; sent rows are kept for outbox_retention_days so that a
    # fresh (empty) broker can be refilled.
    Column("sent_at", DateTime(timezone=True)),
)

processed_events = Table(
    "processed_events",
    PLUMBING,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("event_type", String(64), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Kept only inbox_retention_hours (shared.inbox prunes the oldest first, by this index).
    Index("processed_events_processed_at", "processed_at"),
)

def record_columns() -> list[Column]:
    """Where a topic record came from and what it carried, kept whole by the tables that hold a
    record to apply or replay later (dead letters, held events)."""
    return [
        Column("topic", String(255), nullable=False),
        Column("partition", Integer, nullable=False),
        Column("offset", BigInteger, nullable=False),
        Column("key", LargeBinary),
        Column("headers", JSONB, nullable=False),
        Column("body", LargeBinary),
    ]


dead_letters = Table(
    "dead_letters",
    PLUMBING,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", String(64)),
    Column("event_type", String(64)),
    *record_columns(),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(16), nullable=False, server_default="parked"),  # parked|replayed|dropped
    Column("note", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("resolved_at", DateTime(timezone=True)),
)

# Events whose cause this service has not applied yet, held until it is (shared.holding).
held_events = Table(
    "held_events",
    PLUMBING,
    Column("id", BigInteger, primary_key=True, autoincrement=True),  # the order they were held in: topic order
    Column("case_id", String(64), nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("event_type", String(64), nullable=False),
    *record_columns(),
    Column("first_held_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("tries", Integer, nullable=False, server_default="0"),  # failed applications after release
    Column("error", Text),
)

# The cause types applied here per case ("*": the case was known before holding existed).
case_causes = Table(
    "case_causes",
    PLUMBING,
    Column("case_id", String(64), primary_key=True),
    Column("event_type", String(64), primary_key=True),
)

plumbing_state = Table(
    "plumbing_state",
    PLUMBING,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it costs a round trip on every checkout (a fifth of intake's hot
        # path). After a database restart the first statement fails instead, SQLAlchemy then
        # invalidates the whole pool, and the consumer and relay retry on their own.
        pool_pre_ping=False,
        # JSONB through orjson: faster, and it keeps Chinese text as UTF-8.
        json_serializer=lambda obj: orjson.dumps(obj).decode(),
        json_deserializer=orjson.loads,
    )
    event.listen(engine.sync_engine, "handle_error", _discard_broken_connection)
    return engine


def _discard_broken_connection(context: ExceptionContext) -> None:
    """Treat a connection that failed mid-operation as disconnected, so SQLAlchemy throws it
    (and, after a database restart, the pool's other stale ones) away instead of handing it
    out again: asyncpg's "cannot switch to state …; another operation is in progress" is not
    among the errors SQLAlchemy itself takes for a disconnect."""
    if not context.is_disconnect and connection_broken(context.original_exception):
        context.is_disconnect = True


def in_literal(column: ColumnElement[Any], values: Iterable[str]) -> ColumnElement[bool]:
    """``column IN ('a', 'b')`` with the values written into the SQL rather than bound.

    asyncpg prepares every statement, and after a few runs PostgreSQL plans it once for any
    parameters: with ``state IN ($1, $2)`` it cannot prove a partial index's ``WHERE state IN
    ('a', 'b')`` and scans the table instead. Constants keep the index usable."""
    return column.in_(bindparam(None, tuple(values), expanding=True, literal_execute=True))


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def outbox_row(event: EventBase, trace: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The row the relay publishes; ``trace``: the ``ce_traceparent``/``ce_tracestate`` headers
    (shared.tracing) of the span the event was written under, travelling with it."""
    message = to_message(event)
    return {
        "event_id": event.id,
        "event_type": event.type,
        "key": message.key.decode(),
        "headers": [[k, v.decode()] for k, v in message.headers] + [[k, v] for k, v in trace or ()],
        "body": message.value,
    }


class UndeclaredEvent(RuntimeError):
    """A service emitted an event type its ServiceSpec does not declare in ``publishes``."""


class UnitOfWork:
    """One transaction: state changes plus the events they produce.

    ``async with uow: ...; await uow.commit()``. Leaving the block without commit rolls
    back. ``emit`` queues an event; ``commit`` writes the queued events to the outbox in
    the same transaction, then tells the relay there is work, then runs the callbacks given
    to ``after_commit``.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        on_commit: Callable[[], None] | None = None,
        on_flush: Callable[[UnitOfWork, list[EventBase]], Awaitable[None]] | None = None,
        publishes: frozenset[str] | None = None,
    ) -> None:
        self._sessions = sessions
        self._on_commit = on_commit
        self._on_flush = on_flush
        # The event types the service declares it writes (ServiceSpec.publishes); None: unchecked.
        self._publishes = publishes
        self._session: AsyncSession | None = None
        self.pending: list[EventBase] = []
        self._after_commit: list[Callable[[], None]] = []
        self._wrote_outbox = False  # a hand-written statement inserted outbox rows (execute_sql)
        self._alone = False  # a statement ran as the whole unit of work (execute_sql)
        # The span each consumed event was applied under, by event id (shared.tracing.applying):
        # an event emitted in its name (its causation_id) continues its trace.
        self.traces: dict[Any, Any] = {}

    async def __aenter__(self) -> UnitOfWork:
        # The session is made on first use: a unit of work that never touches it (a statement
        # run alone, see execute_sql) skips its commit, rollback and close, each a greenlet hop.
        self._session = None
        self.pending = []
        self._after_commit = []
        self._wrote_outbox = False
        self._alone = False
        self.traces = {}
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._after_commit = []  # rolled back: what they would announce never happened
        session, self._session = self._session, None
        if session is None:
            return
        try:
            await session.rollback()  # a no-op after a commit
        finally:
            await session.close()

    @property
    def session(self) -> AsyncSession:
        """The transaction's session (begun on its first statement)."""
        if self._session is None:
            self._session = self._sessions()
        return self._session

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this transaction has committed, never if it rolls back: to
        wake a loop that must see what it wrote (notify's sender, SLA's ticker), which reads
        the rows only after the commit. Given twice, it runs once. (One given under a savepoint
        that rolls back still runs if the transaction commits: a wake-up for nothing.)"""
        if callback not in self._after_commit:
            self._after_commit.append(callback)

    def emit(self, event: EventBase) -> None:
        # The AsyncAPI document (shared/asyncapi.py) names each type's publishers from the
        # declarations: an undeclared type would make it lie, so it is refused here.
        if self._publishes is not None and event.type not in self._publishes:
            raise UndeclaredEvent(f"{event.type} is not among the event types this service declares it publishes (ServiceSpec.publishes)")
        self.pending.append(event)

    async def flush_events(self) -> None:
        """Write queued events to the outbox now (still inside the transaction).

        ``on_flush`` (a service that applies its own events inline) sees each written batch
        and may emit more; those are written in turn, in the same transaction.
        """
        if self.pending and self._alone:
            raise RuntimeError("a statement run alone is the unit of work's only one: emit no events beside it")
        while self.pending:
            events, self.pending = self.pending, []
            await self.session.execute(insert(outbox), [outbox_row(e, self.trace_headers(e)) for e in events])
            if self._on_flush is not None:
                await self._on_flush(self, events)

    def trace_headers(self, event: EventBase) -> list[tuple[str, str]]:
        """The trace context ``event`` travels with: its cause's span, else the current one."""
        if not tracing.active():
            return []
        return tracing.headers_of(self.traces.get(event.causation_id))

    def traceparent_for(self, event_id: Any) -> str | None:
        """The ``traceparent`` of the span event ``event_id`` was applied under (to store with
        work done later in its name, e.g. notify's messages); None when not traced."""
        return tracing.traceparent_of(self.traces.get(event_id))

    async def execute_sql(
        self, sql: str, parameters: Sequence[Any] = (), *, writes_outbox: bool = False, alone: bool = False
    ) -> Sequence[Any]:
        """One hand-written statement in this unit of work, with positional parameters as the
        driver takes them (``$1``, ``$2``…), and the rows it returns: for a hot path where
        building a statement with SQLAlchemy each time would cost more than the work (intake's
        filing stores a whole group of appeals, their outbox rows and timeline entries with one
        statement over arrays). It runs on the session's connection, so it commits or rolls
        back with the rest, and its failures are the engine's: a broken connection is thrown
        away, an outage is a 503 (``shared.outage``), as for every other statement.

        ``writes_outbox``: the statement inserts outbox rows (each ``outbox_row``'s, the only
        kind the relay reads), so the commit nudges the relay as it does for emitted events.

        ``alone``: this statement is the whole unit of work, so it runs without BEGIN and
        COMMIT (PostgreSQL runs a lone statement atomically, durable when it returns): two
        round trips fewer, which on this machine cost more CPU than a small statement itself.
        It goes straight to the driver on a connection of the engine's pool, without the
        session (the session's plumbing cost more than intake's filing statement): the rows
        are the driver's (asyncpg ``Record``: ``row[0]``, ``row["name"]``) and so are its
        errors, a broken connection is thrown away as the engine does and an outage is still a
        503 (``shared.outage`` reads the driver's errors). It must be the unit of work's first
        and only write, and leaving without ``commit`` no longer undoes it (``commit`` still
        runs the after-commit nudge and callbacks).

        Otherwise the rows are SQLAlchemy ``Row``s (``row[0]``, ``row.name``)."""
        if self._alone or (alone and self._session is not None and self._session.in_transaction()):
            raise RuntimeError("a statement run alone is the unit of work's only one")
        if alone:
            self._alone = True
            rows: Sequence[Any] = await self._run_alone(sql, parameters)
        else:
            connection = await self.session.connection()
            result = await connection.exec_driver_sql(sql, tuple(parameters))
            rows = result.all() if result.returns_rows else []
        if writes_outbox:
            self._wrote_outbox = True
        return rows

    async def _run_alone(self, sql: str, parameters: Sequence[Any]) -> list[Any]:
        """The statement straight on the driver, on a connection of the engine's pool, with no
        session or transaction around it: through the session (its checkout, the AUTOCOMMIT
        switch, commit, rollback and close, each a greenlet hop) a lone appeal cost 1.75× the CPU
        of intake's own asyncpg pool; this way it costs the same."""
        engine: AsyncEngine = self._sessions.kw["bind"]
        fairy = await engine.raw_connection()  # one greenlet hop (checking out may connect)
        try:
            return await fairy.driver_connection.fetch(sql, *parameters)
        except BaseException as exc:
            if connection_broken(exc):
                # What the engine does for its own statements (_discard_broken_connection makes
                # them a disconnect): throw this connection away and, the database having gone
                # away perhaps, replace the pool's older ones on their next checkout.
                engine.sync_engine.pool._invalidate(fairy, exc)  # SQLAlchemy's own disconnect step
            raise
        finally:
            # No transaction was begun on it, so giving it back awaits nothing (no greenlet).
            fairy.close()

    async def commit(self) -> None:
        had_events = bool(self.pending) or self._wrote_outbox
        await self.flush_events()
        if self._session is not None:
            await self._session.commit()
        self._wrote_outbox = False
        if had_events and self._on_commit is not None:
            self._on_commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()


P = ParamSpec("P")
R = TypeVar("R")


def transactional(
    use_case: Callable[Concatenate[UnitOfWork, P], Awaitable[R]],
) -> Callable[Concatenate[UnitOfWork, P], Awaitable[R]]:
    """A use case that is one transaction: it opens the caller's (fresh) unit of work, and
    commits when the use case returns; a domain error (or any other) rolls everything back.
    The one place a request's changes are committed, so that routes only parse, call and answer."""

    @functools.wraps(use_case)
    async def run(uow: UnitOfWork, *args: P.args, **kwargs: P.kwargs) -> R:
        async with uow:
            result = await use_case(uow, *args, **kwargs)
            await uow.commit()
            return result

    return run


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


# Where each case stands, as this service has seen it on the topic (every service keeps one).
case_status = Table(
    "case_status",
    PLUMBING,
    Column("case_id", String(64), primary_key=True),
    Column("status", String(24)),
    Column("events_applied", Integer, nullable=False),
    Column("last_event_type", String(64), nullable=False),
    Column("last_event_at", DateTime(timezone=True), nullable=False),
    # where the case is and who was asked to handle it (plumbing_0003; shared.scope)
    Column("county", String(64)),
    Column("township", String(64)),
    Column("village", String(64)),
    Column("grid", String(64)),
    Column("units", ARRAY(String(64)), nullable=False, server_default="{}"),
)


class CaseRows:
    """A per-case table as a handler's working set: the rows of a batch's cases read once,
    locked (in case order, so two replicas never deadlock), and written back once with one
    upsert; a case not there yet starts from ``defaults`` (the table's other columns None)."""

    def __init__(self, table: Table, defaults: dict[str, Any] | None = None) -> None:
        self.table = table
        self.new_row: dict[str, Any] = {column.name: None for column in table.columns} | (defaults or {})
        self.columns = tuple(column.name for column in table.columns if column.name != "updated_at")
        self._lock = (
            select(table).where(table.c.case_id.in_(bindparam("ids", expanding=True))).order_by(table.c.case_id).with_for_update()
        )
        upsert = pg_insert(table)
        self._upsert = upsert.on_conflict_do_update(
            index_elements=["case_id"],
            set_={**{c: upsert.excluded[c] for c in self.columns if c != "case_id"}, "updated_at": func.now()},
        )

    async def load(self, session: AsyncSession, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored rows of these cases, locked until the transaction ends."""
        result = await session.execute(self._lock, {"ids": sorted(set(case_ids))})
        return {row["case_id"]: dict(row) for row in result.mappings()}

    def new(self, case_id: str) -> dict[str, Any]:
        return {**self.new_row, "case_id": case_id}

    async def save(self, session: AsyncSession, rows: Iterable[dict[str, Any]]) -> None:
        values = [{c: row[c] for c in self.columns} for row in rows]
        if values:
            await session.execute(self._upsert, values)
