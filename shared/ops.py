"""Operations over a service's database and the broker, for the on-call engineer.

Everything here works on a service's own database and the topic, without the service's
HTTP API (it may be the thing that is down): readiness thresholds, the plumbing state
(outbox backlog, dead letters), a consumer group's lag measured from the broker, dead
letters (list, show, replay, drop), republishing the outbox, and rebuilding a service's
projections from the topic into a fresh database. ``python -m services.ops`` is the
command line over these functions.

Why replay works the way it does: a parked event is put back on its original topic with
its original key and headers, so it reaches the service through the normal consumer path;
the inbox (``processed_events``) still makes it take effect at most once, and the other
services, which handled it long ago, drop it as a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus import new_producer
from shared.consumer import BatchHandler, EventConsumer
from shared.db import UnitOfWork, create_engine, dead_letters, outbox, session_factory
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)


class OpsError(Exception):
    """A failed operation, worded for the operator: what went wrong and how to fix it."""


# -- readiness thresholds ---------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    """When ``/ready`` turns a replica away (503), so a load balancer drains a stuck one.

    Read from the service's settings (``ServiceSettings.ready_max_lag_seconds``,
    ``ready_max_lag`` and ``ready_max_outbox_age_seconds``: ``<SERVICE>_READY_…`` first,
    then ``READY_…``). Lag is limited as time behind: a count of messages means minutes at
    one appeal a second and nothing at a thousand.
    Generous defaults: a replica catching up after a restart should not be drained; one
    that stopped moving should.
    """

    ready_max_lag: int | None
    ready_max_outbox_age_seconds: float
    ready_max_lag_seconds: float = 60


def load_readiness(settings: ServiceSettings) -> Readiness:
    return Readiness(settings.ready_max_lag, settings.ready_max_outbox_age_seconds, settings.ready_max_lag_seconds)


def lag_reasons(limits: Readiness, *, messages_known: int, seconds_behind: float) -> list[str]:
    """Why a consumer this far behind is not ready (empty when it is within the limits).
    ``messages_known`` is a lower bound (partitions whose lag is unknown are left out):
    already over the limit is over it."""
    reasons = []
    if seconds_behind > limits.ready_max_lag_seconds:
        reasons.append(f"consumer {seconds_behind:.0f}s behind (more than {limits.ready_max_lag_seconds:g}s)")
    if limits.ready_max_lag is not None and messages_known > limits.ready_max_lag:
        reasons.append(f"consumer lag {messages_known} messages (more than {limits.ready_max_lag})")
    return reasons


# -- the plumbing state of one database -------------------------------------------------


@dataclass
class PlumbingState:
    outbox_backlog: int
    outbox_oldest_age_seconds: float  # 0 when nothing waits
    dead_letters_parked: int


async def plumbing_state(engine: AsyncEngine) -> PlumbingState:
    async with engine.connect() as conn:
        backlog, oldest = (
            await conn.execute(select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None)))
        ).one()
        parked = (
            await conn.execute(select(func.count()).select_from(dead_letters).where(dead_letters.c.status == "parked"))
        ).scalar()
    age = 0.0 if oldest is None else max(0.0, time.time() - oldest.timestamp())
    return PlumbingState(int(backlog or 0), age, int(parked or 0))


# -- consumer group lag, measured from the broker ---------------------------------------


@dataclass
class PartitionLag:
    partition: int
    committed: int | None  # None: the group never committed here
    highwater: int
    lag: int
    lag_seconds: float  # age of the oldest unhandled message, 0 when caught up


async def _start(consumer: AIOKafkaConsumer, bootstrap_servers: str) -> None:
    try:
        await consumer.start()
    except Exception as exc:
        with contextlib.suppress(Exception):
            await consumer.stop()
        raise OpsError(f"no Kafka broker at {bootstrap_servers} ({type(exc).__name__}); set KAFKA_BOOTSTRAP_SERVERS") from exc


async def measure_group_lag(bootstrap_servers: str, topic: str, group_id: str, *, timeout: float = 5) -> list[PartitionLag]:
    """Lag of a consumer group per partition, without joining the group.

    Committed offsets come from ``committed()`` and the high-water mark from a fetch at the
    committed position (the development broker's ``end_offsets`` under-report); the first
    record of that fetch is the oldest unhandled message, whose timestamp gives the lag in
    seconds. Works while the group's members are stopped, which is when it matters.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(timeout * 1000),
        fetch_max_bytes=1024 * 1024,
        max_partition_fetch_bytes=64 * 1024,
    )
    await _start(consumer, bootstrap_servers)
    try:
        if topic not in await consumer.topics():
            raise OpsError(f"topic {topic!r} does not exist on {bootstrap_servers} (check KAFKA_TOPIC)")
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        committed = {tp: await consumer.committed(tp) for tp in tps}
        beginning = await consumer.beginning_offsets([tp for tp in tps if committed[tp] is None]) if tps else {}
        for tp in tps:
            consumer.seek(tp, committed[tp] if committed[tp] is not None else beginning.get(tp, 0))
        heads: dict[TopicPartition, int] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=len(tps) * 4)
            for tp, records in batch.items():
                if records and tp not in heads:
                    heads[tp] = records[0].timestamp
                    consumer.pause(tp)
            if all(consumer.highwater(tp) is not None for tp in tps):
                break
        out = []
        now_ms = time.time() * 1000
        for tp in tps:
            hw = consumer.highwater(tp)
            if hw is None:
                raise OpsError(f"no high-water mark for {tp.topic}/{tp.partition} within {timeout}s (is the broker healthy?)")
            start = committed[tp] if committed[tp] is not None else beginning.get(tp, 0)
            behind = max(0, hw - start)
            age = max(0.0, (now_ms - heads[tp]) / 1000) if behind and tp in heads else 0.0
            out.append(PartitionLag(tp.partition, committed[tp], hw, behind, age))
        return out
    finally:
        await consumer.stop()


# -- dead letters ------------------------------------------------------------------------


@dataclass
class DeadLetter:
    id: int
    event_id: str | None
    event_type: str | None
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: list[list[str]]
    body: bytes | None
    error: str
    attempts: int
    status: str
    note: str | None
    created_at: datetime
    resolved_at: datetime | None

    @property
    def case_id(self) -> str | None:
        return self.key.decode(errors="replace") if self.key else None


def _dead_letter(row: Any) -> DeadLetter:
    return DeadLetter(**{name: getattr(row, name) for name in DeadLetter.__dataclass_fields__})


async def list_dead_letters(engine: AsyncEngine, *, status: str | None = "parked", limit: int = 100) -> list[DeadLetter]:
    query = select(dead_letters).order_by(dead_letters.c.id).limit(limit)
    if status is not None:
        query = query.where(dead_letters.c.status == status)
    async with engine.connect() as conn:
        return [_dead_letter(r) for r in (await conn.execute(query)).all()]


async def get_dead_letters(engine: AsyncEngine, ids: Sequence[int]) -> list[DeadLetter]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(dead_letters).where(dead_letters.c.id.in_(list(ids))).order_by(dead_letters.c.id))).all()
    found = [_dead_letter(r) for r in rows]
    missing = sorted(set(ids) - {d.id for d in found})
    if missing:
        raise OpsError(f"no dead letter with id {', '.join(map(str, missing))} (see `dlq list`)")
    return found


def _must_be_parked(letters: Iterable[DeadLetter], service: str) -> None:
    for letter in letters:
        if letter.status != "parked":
            raise OpsError(
                f"dead letter {letter.id} of {service} is {letter.status}, not parked: only parked ones can be "
                f"replayed or dropped (see `dlq show {service} {letter.id}`)"
            )


async def replay_dead_letters(engine: AsyncEngine, bootstrap_servers: str, letters: Sequence[DeadLetter], *, service: str) -> int:
    """Put each parked event back on its topic (original key and headers), then mark it replayed.

    Published first, marked after: if marking fails the operator replays again and the
    inbox drops the duplicate; the other way round an event could be marked and lost.
    """
    _must_be_parked(letters, service)
    if not letters:
        return 0
    producer = new_producer(bootstrap_servers, f"ops-replay-{service}")
    await producer.start()
    try:
        for letter in letters:
            await producer.send_and_wait(
                letter.topic,
                value=letter.body,
                key=letter.key,
                headers=[(k, v.encode()) for k, v in letter.headers],
            )
    finally:
        await producer.stop()
    async with engine.begin() as conn:
        await conn.execute(
            update(dead_letters)
            .where(dead_letters.c.id.in_([d.id for d in letters]), dead_letters.c.status == "parked")
            .values(status="replayed", resolved_at=func.now(), note=f"replayed by ops at {datetime.now(UTC).isoformat()}")
        )
    for letter in letters:
        log.warning("%s: dead letter %d (%s %s) replayed onto %s", service, letter.id, letter.event_type, letter.event_id, letter.topic)
    return len(letters)


async def drop_dead_letters(engine: AsyncEngine, letters: Sequence[DeadLetter], *, reason: str, service: str) -> int:
    if not reason.strip():
        raise OpsError("say why the dead letter is dropped: --reason '…' (it is kept in the row and the log)")
    _must_be_parked(letters, service)
    async with engine.begin() as conn:
        await conn.execute(
            update(dead_letters)
            .where(dead_letters.c.id.in_([d.id for d in letters]), dead_letters.c.status == "parked")
            .values(status="dropped", resolved_at=func.now(), note=f"dropped: {reason}")
        )
    for letter in letters:
        log.warning("%s: dead letter %d (%s %s) dropped: %s", service, letter.id, letter.event_type, letter.event_id, reason)
    return len(letters)


# -- the outbox ---------------------------------------------------------------------------


async def outbox_sent_since(engine: AsyncEngine, since: datetime) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at >= since))).scalar() or 0)


async def republish_outbox(engine: AsyncEngine, since: datetime) -> int:
    """Mark rows sent since ``since`` unsent: the relay publishes them again, in id order,
    and the consumers' inboxes drop what they already have."""
    async with engine.begin() as conn:
        result = await conn.execute(update(outbox).where(outbox.c.sent_at >= since).values(sent_at=None))
    return int(result.rowcount or 0)


# -- status over HTTP ---------------------------------------------------------------------


@dataclass
class HttpStatus:
    health: str
    ready: str
    detail: dict[str, Any] = field(default_factory=dict)


async def http_status(base_url: str, *, timeout: float = 3) -> HttpStatus:
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
        try:
            health = await client.get("/health")
            health_text = "ok" if health.status_code == 200 else f"HTTP {health.status_code}"
        except httpx.HTTPError as exc:
            return HttpStatus(f"down ({type(exc).__name__})", "-")
        try:
            ready = await client.get("/ready")
            body = ready.json()
        except (httpx.HTTPError, ValueError) as exc:
            return HttpStatus(health_text, f"? ({type(exc).__name__})")
        if ready.status_code == 200:
            return HttpStatus(health_text, "ready", body)
        reasons = body.get("reasons") or []
        return HttpStatus(health_text, "NOT READY" + (f": {'; '.join(reasons)}" if reasons else ""), body)


# -- rebuilding projections from the topic -----------------------------------------------

# Tables of the plumbing: not projections, not compared.
PLUMBING_TABLES = frozenset({"alembic_version", "outbox", "processed_events", "dead_letters", "plumbing_state"})


@dataclass
class TableCount:
    table: str
    live: int | None
    rebuilt: int | None

    @property
    def verdict(self) -> str:
        if self.live == self.rebuilt:
            return "same"
        if not self.rebuilt:
            return "not built from events"
        return "DIFFERS"


@dataclass
class RebuildReport:
    database: str
    group_id: str
    events: int  # messages read (handled, duplicates and skipped types included)
    seconds: float
    tables: list[TableCount]
    parked: int

    @property
    def differing(self) -> list[TableCount]:
        return [t for t in self.tables if t.verdict == "DIFFERS"]


def parse_start(value: str) -> str | int | datetime:
    """``earliest``, an offset (on every partition), or an ISO-8601 time (UTC if no zone)."""
    if value == "earliest":
        return value
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise OpsError(f"--from {value!r}: give earliest, an offset, or a time like 2026-05-01T08:00:00+08:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _table_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        names = (
            await conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
            )
        ).scalars().all()
        counts = {}
        for name in sorted(set(names) - PLUMBING_TABLES):
            counts[name] = int((await conn.execute(text(f'SELECT count(*) FROM "{name}"'))).scalar() or 0)
        return counts


async def _start_offsets(bootstrap_servers: str, topic: str, group_id: str, start: str | int | datetime) -> dict[int, int]:
    """Where the rebuild group starts, per partition; committed for the group unless earliest."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group_id, enable_auto_commit=False)
    await _start(consumer, bootstrap_servers)
    try:
        if topic not in await consumer.topics():
            raise OpsError(f"topic {topic!r} does not exist on {bootstrap_servers} (check KAFKA_TOPIC)")
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        beginning = await consumer.beginning_offsets(tps)
        if start == "earliest":
            return {tp.partition: beginning[tp] for tp in tps}
        if isinstance(start, int):
            offsets = {tp: max(start, beginning[tp]) for tp in tps}
        else:
            found = await consumer.offsets_for_times({tp: int(start.timestamp() * 1000) for tp in tps})
            # No record at or after that time: start at the end, which we learn by fetching.
            offsets = {}
            for tp in tps:
                if found.get(tp) is not None:
                    offsets[tp] = found[tp].offset
                else:
                    offsets[tp] = (await measure_group_lag(bootstrap_servers, topic, group_id + "-probe"))[tp.partition].highwater
        consumer.assign(tps)
        await consumer.commit(offsets)
        return {tp.partition: offset for tp, offset in offsets.items()}
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class ReplayProgress:
    """How far a replay of the topic has come: the figures ``GET /api/v1/admin/rebuild`` of
    scoring and ``python -m services.ops replay`` show, computed in one place.

    ``done`` counts the topic's records handled (applied, duplicates, types the service does
    not handle, failed alike); ``target`` is the records between the start offsets and the
    high-water marks first seen (None until every partition's is known). Records published
    after that are replayed too, so ``done`` may pass ``target``.
    """

    done: int
    target: int | None
    elapsed_seconds: float

    @property
    def events_per_second(self) -> float:
        return self.done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def remaining_seconds(self) -> float | None:
        """At the rate so far; None while the target or the rate is not known yet."""
        if self.target is None:
            return None
        left = max(0, self.target - self.done)
        if left == 0:
            return 0.0
        rate = self.events_per_second
        return left / rate if rate > 0 else None

    @property
    def share(self) -> float | None:
        if self.target is None:
            return None
        return 1.0 if self.target == 0 else min(1.0, self.done / self.target)

    def as_dict(self) -> dict[str, Any]:
        remaining = self.remaining_seconds
        return {
            "events_done": self.done,
            "events_target": self.target,
            "events_per_second": round(self.events_per_second, 1),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "remaining_seconds": None if remaining is None else round(remaining, 1),
        }


Progress = Callable[[ReplayProgress], None]


async def rebuild(
    *,
    service: str,
    settings: Any,
    handles: frozenset[str],
    batch_handler: BatchHandler,
    migrations: Path,
    start: str | int | datetime = "earliest",
    progress: Progress | None = None,
    database: str | None = None,
    stall_seconds: float = 60,
) -> RebuildReport:
    """Replay the topic into a fresh database of ``service`` and compare it with the live one.

    A temporary consumer group reads from ``start`` through ``shared.consumer`` with the
    service's handler, into a new database migrated like the live one. Nothing is published:
    no relay runs, so events the handler emits stay in the fresh outbox. Done when every
    partition is handled up to the high-water mark seen; then per-table row counts of both
    databases are compared.
    """
    from shared.migrate import ensure_database, migrate

    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    live_url = settings.async_database_url
    live_name = make_url(live_url).database
    database = database or f"{live_name}_rebuild_{stamp}"
    url = make_url(live_url).set(database=database).render_as_string(hide_password=False)
    group_id = f"{settings.group_id}-rebuild-{stamp}"
    await ensure_database(url)
    engine = create_engine(url, pool_size=2)
    live = create_engine(live_url, pool_size=1)
    consumer: EventConsumer | None = None
    started = time.monotonic()
    try:
        await migrate(engine, migrations)
        offsets = await _start_offsets(settings.kafka_bootstrap_servers, settings.kafka_topic, group_id, start)
        sessions = session_factory(engine)
        consumer = EventConsumer(
            service=f"{service}-rebuild",
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic=settings.kafka_topic,
            group_id=group_id,
            handles=frozenset(handles),
            batch_handler=batch_handler,
            new_uow=lambda: UnitOfWork(sessions),
            max_attempts=settings.consumer_max_attempts,
            backoff_seconds=settings.consumer_backoff_seconds,
            batch_size=settings.consumer_batch_size,
        )
        await consumer.start()
        replay_started = last_move = time.monotonic()
        last_done, target = -1, None
        while True:
            await asyncio.sleep(0.1)
            lag, committed = consumer.lag(), consumer.committed_offsets()
            if consumer._task is not None and consumer._task.done():
                consumer._task.result()  # the loop died: raise its error
                raise OpsError("the rebuild consumer stopped unexpectedly")
            highwater = {p: behind + committed[p] for p, behind in lag.items() if behind is not None}
            position = {p: max(committed.get(p, offsets.get(p, 0)), offsets.get(p, 0)) for p in highwater}
            total = sum(max(0, highwater[p] - offsets.get(p, 0)) for p in highwater)
            done = sum(max(0, position[p] - offsets.get(p, 0)) for p in highwater)
            if target is None and set(highwater) == set(offsets):
                target = total  # the high-water marks first seen on every partition
            if progress is not None:
                progress(ReplayProgress(done, target, time.monotonic() - replay_started))
            if set(highwater) == set(offsets) and all(position[p] >= highwater[p] for p in highwater):
                break
            if done != last_done:
                last_done, last_move = done, time.monotonic()
            elif time.monotonic() - last_move > stall_seconds:
                raise OpsError(
                    f"{service} rebuild made no progress for {stall_seconds:.0f}s at {done}/{total} "
                    f"(see the dead letters of {database}, or the logs)"
                )
        await consumer.stop()
        consumer = None
        rebuilt_counts, live_counts = await _table_counts(engine), await _table_counts(live)
        tables = [TableCount(t, live_counts.get(t), rebuilt_counts.get(t)) for t in sorted(set(rebuilt_counts) | set(live_counts))]
        parked = (await plumbing_state(engine)).dead_letters_parked
        return RebuildReport(database, group_id, done, time.monotonic() - started, tables, parked)
    finally:
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        await engine.dispose()
        await live.dispose()


async def drop_database(settings: Any, database: str) -> None:
    """Drop a rebuild database (never the live one)."""
    live_name = make_url(settings.async_database_url).database
    if database == live_name or "_rebuild_" not in database:
        raise OpsError(f"{database} is not a rebuild database; refusing to drop it")
    admin = create_engine(make_url(settings.async_database_url).set(database="postgres").render_as_string(hide_password=False), pool_size=1)
    try:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


# -- terminal output ----------------------------------------------------------------------


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain table that reads in any terminal (widths by display width, CJK counted double)."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [_width(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], _width(value))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v + " " * (w - _width(v)) for v, w in zip(values, widths, strict=False)).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


def _width(value: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in value)


def progress_bar(progress: ReplayProgress, width: int = 30) -> str:
    """``[####......] 40/100 events (40%), 20.0 events/s, 3 s left`` (``?`` while unknown)."""
    share = progress.share
    filled = int((share or 0.0) * width)
    target = "?" if progress.target is None else str(progress.target)
    percent = "?" if share is None else f"{share:.0%}"
    remaining = progress.remaining_seconds
    left = "? s" if remaining is None else f"{remaining:.0f} s"
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {progress.done}/{target} events ({percent}), "
        f"{progress.events_per_second:.1f} events/s, {left} left"
    )
