"""Rebuild every fact by replaying the topic from the beginning into empty tables.

Design (chosen for being simple and sound on one replica):
1. stop the live consumer (it finishes and commits the batch in hand);
2. in one transaction empty the fact tables, the inbox (``processed_events``) and
   ``case_status`` — configuration (weights, grid points) and published scores stay;
3. read the topic from offset 0 of every partition with a group-less consumer (no offsets
   committed anywhere, so the live group's position is untouched), applying the same
   handler's plan through the inbox, one transaction per fetched batch, until every partition's
   position reaches its high-water mark (``consumer.highwater(tp)`` — the development
   broker under-reports ``end_offsets``). A batch is planned as a few
   set-based statements (``scoring.plan.BatchPlan``); the next batches are
   fetched, decoded and planned while the one before them is written;
4. start a new live consumer in the service's group: it resumes from its committed offsets;
   events the replay already applied are duplicates in the inbox, newer ones are applied.

Numbers read during a rebuild are partial (progress is at ``GET /api/v1/admin/rebuild``).
With several replicas, run it on one and scale the others to zero first: each replica's live
consumer would otherwise keep writing into the tables being rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from scoring.batch import unnest_rows
from scoring.models import FACT_TABLES
from shared.cloudevents import MalformedEvent, from_message, header
from shared.db import processed_events
from shared.events import EventBase
from shared.ops import ReplayProgress
from shared.service import Runtime

log = logging.getLogger(__name__)

# The inbox for a whole batch: the ids that were not there yet come back.
_INBOX_ROWS = unnest_rows({"event_id": processed_events.c.event_id.type, "event_type": processed_events.c.event_type.type})
_INBOX_MANY = (
    pg_insert(processed_events)
    .from_select(["event_id", "event_type"], select(_INBOX_ROWS.c.event_id, _INBOX_ROWS.c.event_type))
    .on_conflict_do_nothing()
    .returning(processed_events.c.event_id)
)

class Planner(Protocol):
    """A batch's work, planned from its events alone (pure): events added in order, then the
    statements to run in order (``scoring.plan.BatchPlan``)."""

    def add(self, event: EventBase) -> None: ...

    def statements(self) -> list[tuple[Executable, Any]]: ...


# While the replay runs the cyclic garbage collector runs only when the writer asks for it,
# after every this many batches (young generations only). A replay allocates millions of
# objects that live for a batch or two and are freed by reference counting; the automatic
# collector kept walking them and the service's heap: most of the replay's time with the
# default thresholds, still a fifth with a threshold of 50,000. What it is there for —
# garbage in cycles (sessions, exceptions) — is a few objects per batch.
_COLLECT_EVERY = 20

# Decoding is the replay's main work in Python: it gives the event loop back this often
# (events), so that decoding a batch does not hold up the writes of the one before it.
_DECODE_SLICE = 200


@dataclass
class _Batch:
    """One fetch, decoded: the records (for the event-by-event retry), the events of the
    types scoring handles (duplicates within the fetch dropped), and the plan for all of them."""

    records: list
    events: list[EventBase] = field(default_factory=list)
    malformed: int = 0
    plan: list[tuple[Executable, Any]] | None = None


class Rebuild:
    def __init__(
        self, runtime: Runtime, handles: frozenset[str], *, planner: Callable[[], Planner], batch_size: int = 4000,
        prefetch: int = 2,
    ) -> None:
        self.runtime = runtime
        # The event types applied (the others are skipped unread), and what plans them: the
        # live handler's planner (``scoring.plan.BatchPlan``), a whole fetch or one event at a time.
        self.handles = handles
        self.batch_size = batch_size
        self.planner = planner
        # Fetched and decoded batches waiting while the one before is written.
        self.prefetch = prefetch
        self.task: asyncio.Task[None] | None = None
        self._status: dict[str, Any] = {"state": "idle"}
        # The replay's progress: its clock, records written, the target (set once every
        # partition's first high-water mark is known) and the partitions' log starts.
        self._replay_started: float | None = None
        self._replay_ended: float | None = None
        self._done = 0
        self._target: int | None = None
        self._first_highwater: dict[int, int] = {}
        self._log_start: dict[int, int] = {}
        self._shutting_down = False

    @property
    def status(self) -> dict[str, Any]:
        """What ``GET /api/v1/admin/rebuild`` shows: the state and phase, the counts, and the
        replay's progress (``shared.ops.ReplayProgress``) as of this moment."""
        if self._status["state"] == "idle":
            return self._status
        elapsed = 0.0 if self._replay_started is None else (self._replay_ended or time.perf_counter()) - self._replay_started
        return {**self._status, **ReplayProgress(self._done, self._target, elapsed).as_dict()}

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self) -> dict[str, Any]:
        self._status = {
            "state": "running", "phase": "stopping the live consumer", "started_at": datetime.now(UTC).isoformat(),
            "finished_at": None, "replay_seconds": None, "events_read": 0, "events_applied": 0, "events_failed": 0, "highwater": None,
            "partitions": {}, "error": None,
        }
        self._replay_started = self._replay_ended = self._target = None
        self._done = 0
        self._first_highwater, self._log_start = {}, {}
        self.task = asyncio.create_task(self._run(), name="scoring-rebuild")
        return self.status

    async def stop(self) -> None:
        """Service shutdown: cancel a rebuild in progress (the live consumer stays stopped)."""
        self._shutting_down = True
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task

    async def _run(self) -> None:
        started = time.perf_counter()
        live = self.runtime.consumer
        try:
            if live is not None:
                await live.stop(self.runtime.settings.shutdown_grace_seconds)
            self._status["phase"] = "emptying the fact tables"
            async with self.runtime.uow() as uow:
                names = ", ".join([t.name for t in FACT_TABLES] + ["processed_events", "case_status"])
                await uow.session.execute(text(f"TRUNCATE {names}"))
                await uow.commit()
            self._status["phase"] = "replaying the topic"
            self._replay_started = time.perf_counter()
            try:
                with _few_collections():
                    await self._replay()
            finally:
                self._replay_ended = time.perf_counter()
            self._status["replay_seconds"] = round(self._replay_ended - self._replay_started, 3)
            self._status.update(state="done", phase="done")
        except asyncio.CancelledError:
            self._status.update(state="cancelled", phase="cancelled")
            raise
        except Exception as exc:
            log.exception("rebuild failed")
            self._status.update(state="failed", phase="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._status["finished_at"] = datetime.now(UTC).isoformat()
            self._status["seconds"] = round(time.perf_counter() - started, 3)
            if live is not None and not self._shutting_down:
                self.runtime.consumer = live.like()
                await self.runtime.consumer.start()

    async def _replay(self) -> None:
        """Two tasks: one fetches and decodes (and plans) the next batches while the other
        writes the batch before them, so the database's work overlaps ours."""
        settings = self.runtime.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", client_id="scoring-rebuild", max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        try:
            await consumer.topics()  # loads the metadata
            partitions = sorted(consumer.partitions_for_topic(settings.kafka_topic) or ())
            tps = [TopicPartition(settings.kafka_topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            self._log_start = {tp.partition: offset for tp, offset in (await consumer.beginning_offsets(tps)).items()}
            batches: asyncio.Queue[list[_Batch] | None] = asyncio.Queue(maxsize=self.prefetch)
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._read(consumer, tps, batches), name="scoring-rebuild-read")
                    tasks.create_task(self._write(batches), name="scoring-rebuild-write")
            except ExceptionGroup as failed:
                raise failed.exceptions[0] from None
        finally:
            await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], batches: asyncio.Queue) -> None:
        empty_fetches = 0
        while True:
            fetched = await consumer.getmany(timeout_ms=500, max_records=self.batch_size)
            read = sum(len(r) for r in fetched.values())
            if read:
                # One transaction for the whole fetch: each partition's records stay in order.
                await batches.put([await self._prepare([r for records in fetched.values() for r in records])])
            self._status["events_read"] += read
            empty_fetches = 0 if read else empty_fetches + 1
            done = await self._progress(consumer, tps)
            # A partition never fetched from has no high-water mark yet: after a few empty
            # fetches in a row there is nothing left to read from it either.
            if done:
                break
            if empty_fetches >= 4 and all(self._caught_up(tp) or not consumer.highwater(tp) for tp in tps):
                break
        await batches.put(None)

    async def _write(self, batches: asyncio.Queue) -> None:
        written = 0
        while (item := await batches.get()) is not None:
            for batch in item:
                await self._apply(batch)
                self._done += len(batch.records)
            written += 1
            if written % _COLLECT_EVERY == 0:
                gc.collect(1)

    def _caught_up(self, tp: TopicPartition) -> bool:
        part = self._status["partitions"].get(str(tp.partition), {})
        return part.get("highwater") is not None and part.get("position", 0) >= part["highwater"]

    async def _progress(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
        done = True
        total = 0
        for tp in tps:
            hw = consumer.highwater(tp)
            position = await consumer.position(tp)
            self._status["partitions"][str(tp.partition)] = {"position": position, "highwater": hw}
            total += hw or 0
            if hw is None or position < hw:
                done = False
            if hw is not None:
                self._first_highwater.setdefault(tp.partition, hw)
        self._status["highwater"] = total
        if self._target is None and len(self._first_highwater) == len(tps):
            # The target: every partition from its log start to the high-water mark first seen.
            self._target = sum(max(0, hw - self._log_start.get(p, 0)) for p, hw in self._first_highwater.items())
        return done

    async def _prepare(self, records: list) -> _Batch:
        """Decode a fetch and plan it, assuming every event is new to the inbox (after the
        truncation it is, unless the topic holds an event twice: then it is planned again).
        A batch that cannot be planned (a handler's rule failing on some event) keeps no
        plan: the writer applies it event by event, where that event fails alone."""
        batch = _Batch(records)
        planner: Planner | None = self.planner()
        seen: set = set()
        for i, record in enumerate(records):
            if i % _DECODE_SLICE == _DECODE_SLICE - 1:
                # Let the writer send its next statement as soon as the last one is answered.
                await asyncio.sleep(0)
            if header(record.headers, "ce_type") not in self.handles:
                continue
            try:
                event = from_message(record.value, record.headers)
            except MalformedEvent:
                batch.malformed += 1
                continue
            if event.id in seen:
                continue
            seen.add(event.id)
            batch.events.append(event)
            if planner is not None:
                try:
                    planner.add(event)
                except Exception:
                    log.exception("rebuild cannot plan event %s (%s): its batch goes event by event", event.id, event.type)
                    planner = None
        if planner is not None:
            try:
                batch.plan = planner.statements()
            except Exception:
                log.exception("rebuild cannot plan a batch: it goes event by event")
        return batch

    async def _apply(self, batch: _Batch) -> None:
        """One transaction per batch; a failing event is retried alone and, if it fails
        again, counted and skipped (the live consumer would have dead-lettered it)."""
        try:
            async with self.runtime.uow() as uow:
                applied, malformed = await self._many(uow.session, batch), batch.malformed
                await uow.commit()
            self._status["events_applied"] += applied
            self._status["events_failed"] += malformed
        except Exception:
            for record in batch.records:
                try:
                    async with self.runtime.uow() as uow:
                        applied = await self._one(uow, record)
                        await uow.commit()
                    self._status["events_applied"] += applied
                except Exception as exc:
                    log.warning("rebuild skips an event at %s/%s: %r", record.partition, record.offset, exc)
                    self._status["events_failed"] += 1

    async def _many(self, session: AsyncSession, batch: _Batch) -> int:
        """A batch through the inbox in one statement, then its plan for the events it had
        not seen (a duplicate on the topic, or one already applied, is dropped)."""
        events = batch.events
        if not events:
            return 0
        inbox = {"p_event_id": [e.id for e in events], "p_event_type": [e.type for e in events]}
        fresh = set((await session.execute(_INBOX_MANY, inbox)).scalars())
        plan = batch.plan
        if len(fresh) < len(events):
            events = [e for e in events if e.id in fresh]
            plan = _plan(self.planner, events)
        if plan is None:
            raise RuntimeError("the batch has no plan")  # _apply goes event by event
        for statement, values in plan:
            await session.execute(statement, values)
        return len(events)

    async def _one(self, uow, record) -> int:
        """One record as a batch of one (the same plan as any batch)."""
        if header(record.headers, "ce_type") not in self.handles:
            return 0
        try:
            event = from_message(record.value, record.headers)
        except MalformedEvent:
            self._status["events_failed"] += 1
            return 0
        return await self._many(uow.session, _Batch([record], [event], plan=_plan(self.planner, [event])))


def _plan(planner: Callable[[], Planner], events: list[EventBase]) -> list[tuple[Executable, Any]]:
    plan = planner()
    for event in events:
        plan.add(event)
    return plan.statements()


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """Until the replay ends: the service's heap as it is before it is set aside
    (``gc.freeze``) and no automatic collection (the writer collects, ``_COLLECT_EVERY``)."""
    was_enabled = gc.isenabled()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()


