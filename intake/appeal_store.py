"""Filing's store: the group commit of appeals through the unit of work, and the reads filing needs.

An appeal — or a whole 12345 batch — is stored by **one statement** in the service's unit of
work (``shared.db.UnitOfWork.execute_sql``): a data-modifying CTE that inserts the appeals,
their outbox rows (``shared.db.outbox_row``'s) and their timeline rows together, committed,
nudging the relay and mapping a lost database to a 503 as every other write of every service.
Why one hand-written statement and not SQLAlchemy constructs: filing one appeal through the
ORM cost about 2 ms of CPU (statement compilation, per-row parameter handling) and a round
trip per table. The statement is prepared once per connection (the driver's statement cache),
and values travel as arrays (``unnest``), so one statement text serves one appeal and five
hundred alike.

Appeals filed by concurrent requests share a unit of work and its statement
(``AppealStore.file``: group commit), so under load PostgreSQL commits a few multi-row
transactions instead of hundreds of one-row ones, and the unit of work's fixed cost is paid
per group, not per appeal. A group's statement is its whole transaction, so it runs ``alone``
(no BEGIN and COMMIT round trips); a 12345 batch runs in a real transaction, rolled back when
a concurrent push took one of its tickets. Every appeal is durable before its request is
answered.

The reads (open cases nearby for 并单, tracking numbers, an appeal filed before, attachments)
are single statements on a small asyncpg pool of intake's own: no transaction to open and close
around each. Tracking-number sequence values are taken in blocks (one round trip per
``SEQUENCE_BLOCK`` appeals); a restart leaves a gap in the numbers, which were never gapless anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url

from shared import tracing
from shared.db import UnitOfWork, outbox_row
from shared.events import EventBase
from shared.outage import connection_broken, database_unavailable

from intake.dedup import Candidate

# Frozen in the partial indexes of intake_0001: the literal list lets the planner use them.
from intake.repository import OPEN_STATUSES

SEQUENCE_BLOCK = 100
GROUP_STATEMENTS = 2  # filing transactions running at once (see AppealStore.file)
GROUP_MAX = 100  # appeals in one of them at most
NEAR_LIMIT = 200  # open cases read per appeal for 并单, newest first
CANDIDATE_CACHE = 10_000  # open cases whose texts intake keeps in memory (a few MB)

# (column, PostgreSQL type of the array it travels in); attachments and routing travel as JSON text.
APPEAL_COLUMNS: tuple[tuple[str, str], ...] = (
    ("case_id", "text"), ("tracking_no", "text"), ("channel", "text"), ("title", "text"),
    ("description", "text"), ("status", "text"), ("contact_name_enc", "text"), ("phone_enc", "text"),
    ("phone_hash", "text"), ("phone_masked", "text"), ("id_number_enc", "text"), ("address_enc", "text"),
    ("street", "text"), ("lat", "float8"), ("lng", "float8"), ("county", "text"), ("township", "text"),
    ("village", "text"), ("grid", "text"), ("category", "text"), ("subject_class", "text"), ("urgency", "text"),
    ("confidence", "float8"), ("triage", "text"), ("routing", "text"), ("reject_reason", "text"), ("merged_into", "text"),
    ("solved_on_spot", "bool"), ("external_ref", "text"), ("reporter_id", "text"), ("attachments", "text"),
    ("first_unit", "text"), ("received_by", "text"), ("resolve_due_at", "timestamptz"),
    ("idempotency_key", "text"), ("request_hash", "text"), ("accept_due_at", "timestamptz"),
    ("created_at", "timestamptz"), ("updated_at", "timestamptz"),
)  # fmt: skip
JSON_COLUMNS = frozenset({"attachments", "routing"})
_OUTBOX_ARRAYS = ("uuid", "text", "text", "text", "bytea", "text")  # event id, type, key, headers, body, appeal
_TIMELINE_ARRAYS = ("uuid", "text", "text", "timestamptz", "text", "text")


def _params(types: Sequence[str], start: int) -> str:
    return ", ".join(f"${start + i}::{t}[]" for i, t in enumerate(types))


def _insert_sql() -> str:
    names = [name for name, _ in APPEAL_COLUMNS]
    selected = ", ".join(f"r.{n}::jsonb" if n in JSON_COLUMNS else f"r.{n}" for n in names)
    outbox_at = len(APPEAL_COLUMNS) + 1
    timeline_at = outbox_at + len(_OUTBOX_ARRAYS)
    # ON CONFLICT without a target, as before: a taken idempotency key or (channel, ticket
    # number) makes the appeal, and with it its events, a no-op; the caller looks it up.
    # Events are inserted in their given order (ORDER BY ordinality): the outbox id orders
    # a case's events on the wire, and the timeline's seq orders them for the citizen.
    return f"""
WITH new AS (
    INSERT INTO appeals ({", ".join(names)})
    SELECT {selected}
    FROM unnest({_params([t for _, t in APPEAL_COLUMNS], 1)}) AS r({", ".join(names)})
    ON CONFLICT DO NOTHING
    RETURNING case_id
), events AS (
    INSERT INTO outbox (event_id, event_type, key, headers, body)
    SELECT e.event_id, e.event_type, e.key, e.headers::jsonb, e.body
    FROM unnest({_params(_OUTBOX_ARRAYS, outbox_at)}) WITH ORDINALITY
        AS e(event_id, event_type, key, headers, body, appeal, ord)
    WHERE e.appeal IN (SELECT case_id FROM new)
    ORDER BY e.ord
), entries AS (
    INSERT INTO timeline (event_id, case_id, event_type, occurred_at, label, detail)
    SELECT t.event_id, t.case_id, t.event_type, t.occurred_at, t.label, t.detail
    FROM unnest({_params(_TIMELINE_ARRAYS, timeline_at)}) WITH ORDINALITY
        AS t(event_id, case_id, event_type, occurred_at, label, detail, ord)
    WHERE t.case_id IN (SELECT case_id FROM new)
    ORDER BY t.ord
    ON CONFLICT DO NOTHING
)
SELECT case_id FROM new
"""


INSERT_SQL = _insert_sql()

_OPEN = ", ".join(f"'{s}'" for s in OPEN_STATUSES)
_NEAR_COLUMNS = "case_id, township, created_at"
_NEAR_OPEN = f"created_at >= q.since AND status IN ({_OPEN}) AND merged_into IS NULL"
# One look-up for many appeals (a 12345 batch), each with its own box and township: the
# newest open cases received since the window's start in the box or the same township,
# per appeal, in one round trip. Each side reads its own partial index newest first and
# stops at the limit; one ``OR`` would read every open case of a busy township, then sort.
# The two sides are merged newest first as they come (UNION ALL, a merge of two sorted
# streams) rather than made distinct by PostgreSQL (UNION: hash, then sort again, which took
# as long as reading the rows): a case both sides name comes twice, and
# ``AppealStore.open_cases_near`` keeps its first and the newest ``NEAR_LIMIT``.
# It names the cases (and their township, which a manual triage may change); their texts,
# which never change, come from ``CandidateCache`` or else ``CANDIDATES_SQL``.
NEAR_SQL = f"""
SELECT q.i, a.case_id, a.township
FROM unnest($1::int[], $2::float8[], $3::float8[], $4::float8[], $5::float8[], $6::text[], $7::timestamptz[])
    AS q(i, min_lat, max_lat, min_lng, max_lng, township, since)
CROSS JOIN LATERAL (
    SELECT {_NEAR_COLUMNS} FROM (
        (SELECT {_NEAR_COLUMNS} FROM appeals
         WHERE q.township IS NOT NULL AND township = q.township AND {_NEAR_OPEN}
         ORDER BY created_at DESC LIMIT {NEAR_LIMIT})
        UNION ALL
        (SELECT {_NEAR_COLUMNS} FROM appeals
         WHERE q.min_lat IS NOT NULL  -- no box: skipped as a whole, not scanned row by row
           AND lat BETWEEN q.min_lat AND q.max_lat AND lng BETWEEN q.min_lng AND q.max_lng AND {_NEAR_OPEN}
         ORDER BY created_at DESC LIMIT {NEAR_LIMIT})
    ) AS either
    ORDER BY created_at DESC
) a
"""

CANDIDATES_SQL = (
    "SELECT case_id, title, description, lat, lng, township, created_at FROM appeals WHERE case_id = ANY($1::text[])"
)

_EXISTING_COLUMNS = "case_id, tracking_no, status, accept_due_at, merged_into, reject_reason, request_hash, external_ref"
BY_KEY_SQL = f"SELECT {_EXISTING_COLUMNS} FROM appeals WHERE idempotency_key = $1"
BY_REFS_SQL = f"SELECT {_EXISTING_COLUMNS} FROM appeals WHERE channel = $1 AND external_ref = ANY($2::text[])"
ATTACHMENTS_SQL = "SELECT id FROM attachments WHERE id = ANY($1::text[])"
SEQUENCE_SQL = "SELECT nextval('tracking_seq') FROM generate_series(1, $1)"


@dataclass(frozen=True)
class NearQuery:
    """Where to look for open cases about the same matter (see ``AppealStore.open_cases_near``)."""

    box: tuple[float, float, float, float] | None
    township: str | None
    since: datetime


@dataclass(frozen=True)
class StoredAppeal:
    """One appeal ready to store: its row, its events, and its timeline entries."""

    row: dict[str, Any]
    events: list[EventBase]
    timeline: list[dict[str, Any]]
    # The filing request's trace context, taken where the appeal is made (the request's task):
    # the group commit writes it from another task, under no span of the request.
    trace: list[tuple[str, str]] = field(default_factory=tracing.headers_of)

    @property
    def case_id(self) -> str:
        return self.row["case_id"]


def _settle(future: asyncio.Future[bool], result: bool = False, *, exc: BaseException | None = None) -> None:
    if future.done():  # the request was cancelled meanwhile; its appeal is stored all the same
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The service's SQLAlchemy URL (``postgresql+asyncpg://…``) as a plain libpq DSN."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query: the reads set no session state and hold no
    transaction between statements (asyncpg still rolls back one left open), so the reset
    would only cost a round trip per read."""


def outbox_columns(appeals: Iterable[StoredAppeal]) -> list[list[Any]]:
    """The outbox rows of the batch as columns for one ``unnest`` insert: each row is
    ``shared.db.outbox_row``'s, the one every unit of work writes, plus the case that owns it."""
    ids, types, keys, headers, bodies, owners = [], [], [], [], [], []
    for appeal in appeals:
        for event in appeal.events:
            row = outbox_row(event, appeal.trace)
            ids.append(row["event_id"])
            types.append(row["event_type"])
            keys.append(row["key"])
            headers.append(orjson.dumps(row["headers"]).decode())
            bodies.append(row["body"])
            owners.append(appeal.case_id)
    return [ids, types, keys, headers, bodies, owners]


def timeline_columns(appeals: Iterable[StoredAppeal]) -> list[list[Any]]:
    names = ("event_id", "case_id", "event_type", "occurred_at", "label", "detail")
    columns: list[list[Any]] = [[] for _ in names]
    for appeal in appeals:
        for entry in appeal.timeline:
            for column, name in zip(columns, names, strict=True):
                column.append(entry[name])
    return columns


def appeal_columns(appeals: Sequence[StoredAppeal]) -> list[list[Any]]:
    columns: list[list[Any]] = []
    for name, _ in APPEAL_COLUMNS:
        if name in JSON_COLUMNS:
            columns.append([None if a.row[name] is None else orjson.dumps(a.row[name]).decode() for a in appeals])
        else:
            columns.append([a.row[name] for a in appeals])
    return columns


def candidate_of(row: Any) -> Candidate:
    """An appeal's row (a record, or the dict filing stores) as a 并单 candidate."""
    return Candidate(row["case_id"], row["title"], row["description"], row["lat"], row["lng"], row["township"], row["created_at"])


def newest_distinct(
    rows: Iterable[Sequence[Any]], queries: int, limit: int = NEAR_LIMIT
) -> list[list[tuple[str, str | None]]]:
    """``NEAR_SQL``'s rows ``(query, case id, township)``, newest first, as each query's first
    ``limit`` distinct cases: a case both sides of the search name comes twice."""
    named: list[dict[str, str | None]] = [{} for _ in range(queries)]
    for i, case_id, township in rows:
        named[i].setdefault(case_id, township)
    return [list(islice(cases.items(), limit)) for cases in named]


class CandidateCache:
    """The texts and places of open cases, by case id, so the duplicate search reads them
    once and not once per appeal that looks near them.

    A busy street's 200 newest open cases are the candidates of every appeal filed there
    for a while: reading their titles and descriptions again for each appeal was most of
    that query's cost and of intake's time decoding rows. What a candidate is made of never
    changes once filed except its township (a manual triage may move it), so the township
    is read each time and only the rest is kept. The first entries go first when it is full;
    an evicted case is simply read again."""

    def __init__(self, size: int = CANDIDATE_CACHE) -> None:
        self.size = size
        self._known: dict[str, Candidate] = {}

    def __len__(self) -> int:
        return len(self._known)

    def remember(self, candidate: Candidate) -> None:
        self._known[candidate.case_id] = candidate
        while len(self._known) > self.size:
            del self._known[next(iter(self._known))]

    def missing(self, case_ids: Iterable[str]) -> list[str]:
        return list(dict.fromkeys(c for c in case_ids if c not in self._known))

    def get(self, case_id: str, township: str | None) -> Candidate:
        """The case as a candidate, in the township the database holds now (``KeyError``
        for a case neither remembered nor read)."""
        known = self._known[case_id]
        return known if known.township == township else known._replace(township=township)


class AppealStore:
    """Filing's group commit through the service's unit of work, and the reads filing needs
    on a small asyncpg pool of intake's own.

    ``new_uow`` (the service's ``Runtime.uow``, given at start-up) opens the transaction
    appeals are filed in: the same commit, relay nudge and outage handling as every write.
    """

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self._new_uow: Callable[[], UnitOfWork] | None = None
        self._pool: asyncpg.Pool | None = None
        self._numbers: list[int] = []
        self._numbers_lock = asyncio.Lock()
        self._waiting: list[tuple[StoredAppeal, asyncio.Future[bool]]] = []
        self._flushers = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.candidates = CandidateCache()

    async def open(self, new_uow: Callable[[], UnitOfWork]) -> None:
        self._new_uow = new_uow
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self.pool_size, reset=_keep_session,
            # Statements that wait on a conflicting insert may take a while; never forever.
            command_timeout=60,
        )

    def uow(self) -> UnitOfWork:
        """A unit of work of the service (``async with store.uow() as uow: …``)."""
        if self._new_uow is None:
            raise RuntimeError("the appeal store is not open (intake's start-up opens it)")
        return self._new_uow()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the appeal store is not open (intake's start-up opens it)")
        return self._pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection that goes back to the pool only if it is still sound.

        One that failed mid-operation (cut off, cancelled, asyncpg's protocol left half-way)
        is terminated instead: released, the next request would meet "cannot switch to
        state …; another operation is in progress". When the failure says the database went
        away (a restart), the pool's other connections are stale too and are replaced on
        their next use (``expire_connections``), as SQLAlchemy invalidates its pool."""
        pool = self.pool
        conn = await pool.acquire()
        try:
            yield conn
        except BaseException as exc:
            if connection_broken(exc):
                conn.terminate()
                if database_unavailable(exc):
                    await pool.expire_connections()
            raise
        finally:
            await pool.release(conn)

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        async with self.connection() as conn:
            return await conn.fetch(sql, *args)

    async def sequence_numbers(self, count: int) -> list[int]:
        """``count`` tracking-number sequence values, in order, from the local block."""
        async with self._numbers_lock:
            if len(self._numbers) < count:
                wanted = max(SEQUENCE_BLOCK, count - len(self._numbers))
                rows = await self._fetch(SEQUENCE_SQL, wanted)
                self._numbers.extend(row[0] for row in rows)
            taken, self._numbers = self._numbers[:count], self._numbers[count:]
        return taken

    async def file(self, appeal: StoredAppeal) -> bool:
        """Store one appeal (True) or find its unique key taken (False), in a transaction
        (and its one statement) shared with the appeals other requests are filing at the
        same moment.

        At most ``GROUP_STATEMENTS`` transactions run at once; appeals arriving meanwhile
        wait and go together in the next one (group commit). Under load this turns hundreds of
        one-row transactions per second into a few dozen multi-row ones, which is what
        PostgreSQL and the client library spend their time on; alone, an appeal goes at once.
        Each is still durable before its request is answered.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((appeal, future))
        if self._flushers < GROUP_STATEMENTS:
            self._flushers += 1
            task = asyncio.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting[:GROUP_MAX], self._waiting[GROUP_MAX:]
                await self._store_group(group)
        finally:
            self._flushers -= 1

    async def _store_group(self, group: list[tuple[StoredAppeal, asyncio.Future[bool]]]) -> None:
        try:
            inserted = await self._commit([appeal for appeal, _ in group])
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0][1], exc=exc)
                return
            # One bad appeal must not fail the others: each again on its own.
            for appeal, future in group:
                try:
                    _settle(future, appeal.case_id in await self._commit([appeal]))
                except Exception as own:
                    _settle(future, exc=own)
            return
        for appeal, future in group:
            _settle(future, appeal.case_id in inserted)

    async def _commit(self, appeals: Sequence[StoredAppeal]) -> set[str]:
        async with self.uow() as uow:
            # The group's one statement is the whole transaction: run alone, without BEGIN and
            # COMMIT (two round trips that cost about as much CPU as the rest of filing) and
            # without the session, straight on a pooled connection (as cheap as a pool of our own).
            inserted = await self.store(uow, appeals, alone=True)
            await uow.commit()
        return inserted

    async def store(self, uow: UnitOfWork, appeals: Sequence[StoredAppeal], *, alone: bool = False) -> set[str]:
        """Insert the appeals with their events and timeline in one statement of ``uow``;
        the case ids inserted (a taken unique key skips an appeal and its events). The caller
        commits (the relay is nudged then) or leaves without, rolling back — unless the
        statement ran ``alone`` (``UnitOfWork.execute_sql``): then it is the whole unit of
        work, committed when it returns.
        """
        if not appeals:
            return set()
        args = [*appeal_columns(appeals), *outbox_columns(appeals), *timeline_columns(appeals)]
        inserted = {row[0] for row in await uow.execute_sql(INSERT_SQL, args, writes_outbox=True, alone=alone)}
        # The next appeals nearby will meet the open ones. One that is rolled back is never
        # named by the duplicate search, so remembering it does no harm.
        for appeal in appeals:
            if appeal.case_id in inserted and appeal.row["status"] in OPEN_STATUSES:
                self.candidates.remember(candidate_of(appeal.row))
        return inserted

    async def open_cases_near(self, queries: Sequence[NearQuery | None]) -> list[list[Candidate]]:
        """For each query (None: nothing to look for), the open cases near it, newest first."""
        wanted = [(i, q) for i, q in enumerate(queries) if q is not None and (q.box is not None or q.township)]
        if not wanted:
            return [[] for _ in queries]
        columns: list[list[Any]] = [[] for _ in range(7)]
        for i, query in wanted:
            box = query.box or (None, None, None, None)
            for column, value in zip(columns, (i, *box, query.township, query.since), strict=True):
                column.append(value)
        named = newest_distinct(await self._fetch(NEAR_SQL, *columns), len(queries))
        missing = self.candidates.missing(case_id for cases in named for case_id, _ in cases)
        if missing:
            for row in await self._fetch(CANDIDATES_SQL, missing):
                self.candidates.remember(candidate_of(row))
        get = self.candidates.get
        return [[get(case_id, township) for case_id, township in cases] for cases in named]

    async def by_idempotency_key(self, key: str) -> asyncpg.Record | None:
        async with self.connection() as conn:
            return await conn.fetchrow(BY_KEY_SQL, key)

    async def by_external_refs(self, channel: str, refs: list[str]) -> dict[str, asyncpg.Record]:
        if not refs:
            return {}
        return {row["external_ref"]: row for row in await self._fetch(BY_REFS_SQL, channel, refs)}

    async def unknown_attachments(self, ids: list[str]) -> list[str]:
        """The ids among ``ids`` that no upload produced."""
        if not ids:
            return []
        found = {row[0] for row in await self._fetch(ATTACHMENTS_SQL, ids)}
        return [i for i in ids if i not in found]
