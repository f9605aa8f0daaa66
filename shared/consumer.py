"""The idempotent consumer: effectively-once handling over at-least-once delivery.

For each fetch (every partition's batch together, or each partition's on its own when that
fails — see below):
1. messages whose ``ce_type`` header the service does not handle (``handles``) are skipped
   unread;
2. the rest are applied in one database transaction: their event ids go into the inbox
   (``processed_events``) in one ``INSERT … ON CONFLICT DO NOTHING``, and only the new ones
   are handed to the service's handler, all at once, each partition's in topic order
   (cases are keyed to partitions, so a case's events keep their order) — so a redelivered
   event is a no-op;
3. the Kafka offsets are committed only after the database commit.

A service has one handler, ``(uow, events) -> None``: it applies a list of events to a
working set it reads once and writes once. A single event is a batch of one; there is no
second, per-event path.

At a steady trickle a fetch brings one or two events per partition; a transaction per
partition would then cost a commit (a WAL flush) per event. So the partitions of a fetch
are applied in one transaction first, and only if that fails (a handler, the database)
is each partition applied on its own as described next.

When the handler fails on a partition's batch, the batch is applied again event by event —
the same handler, each event as a batch of one under a savepoint — so the good events before
the bad one are kept; the partition is sought back to the failing event and paused for an
exponential backoff while the other partitions go on. After ``max_attempts`` the event is
parked: a row in ``dead_letters`` and a copy on ``<topic>.dlq.<service>`` with the error in
its headers, and the consumer moves on.

Infrastructure failures (database down, commit failed) never count as attempts: the
batch is retried until the infrastructure is back, and nothing is dead-lettered for it.

Order across producers: a service may declare ``requires`` (event type -> the types of the
same case it must have applied first). An event whose causes are not known yet is held in
``held_events`` instead of applied, and applied (through the inbox, once) right after the
event that completes its causes (through the same handler, as a batch of one); see
``shared.holding``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy import bindparam, cast, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert

from opentelemetry.context import Context
from opentelemetry.trace import Tracer

from shared import holding, metrics, tracing
from shared.tasks import stop_task
from shared.bus import dlq_topic, new_producer, read_epoch
from shared.cloudevents import SOURCE_PREFIX, MalformedEvent, attributes, from_attributes, header
from shared.db import UnitOfWork, dead_letters, processed_events
from shared.events import EventBase
from shared.holding import Requires
from shared.logs import bind_event_context

log = logging.getLogger(__name__)

# Bounds on the client calls that can wait on a broker that is gone or fresh (seconds).
COMMIT_TIMEOUT_SECONDS = 15.0
EPOCH_TIMEOUT_SECONDS = 15.0
DLQ_TIMEOUT_SECONDS = 30.0
# A loop step or an unassigned member lasting longer than this is said in the log.
STALL_WARN_SECONDS = 45.0
WATCH_EVERY_SECONDS = 10.0
# A member stalled this long while the broker answers (its loop waiting inside a fetch, or a
# rebalance that never ends) gets a new Kafka client: aiokafka's fetch waits for a rebalance
# without a bound, and after a broker loss a member was seen never to rejoin (issue #22).
RENEW_AFTER_SECONDS = 60.0
REVOKE_COMMIT_SECONDS = 5.0  # a rebalance waits this long at most for the commit in flight
RENEW_STOP_SECONDS = 10.0  # the stuck client's stop, bounded: it may wait on a dead coordinator
# The longest the loop waits for records before its checks (epoch, held events, lag gauges):
# records end the wait at once, so this only sets how often an idle consumer wakes (it was
# 200 ms: five wake-ups a second in every service with nothing to do).
IDLE_WAIT_SECONDS = 1.0

# A service's one handler: the new events of a batch (inbox already written), in topic
# order, applied to a working set read once and written once; one event is a batch of one.
BatchHandler = Callable[[UnitOfWork, list[EventBase]], Awaitable[None]]

# The inbox insert for a batch (one array per column), built once: the ids not there yet come back.
_BATCH_ROWS = func.unnest(
    cast(bindparam("event_ids"), ARRAY(processed_events.c.event_id.type)),
    cast(bindparam("event_types"), ARRAY(processed_events.c.event_type.type)),
).table_valued("event_id", "event_type").render_derived(name="v")
_RECORD_PROCESSED_MANY = (
    pg_insert(processed_events)
    .from_select(["event_id", "event_type"], select(_BATCH_ROWS.c.event_id, _BATCH_ROWS.c.event_type))
    .on_conflict_do_nothing()
    .returning(processed_events.c.event_id)
)


@dataclass
class _Parked:
    record: ConsumerRecord
    error: str
    attempts: int


@dataclass
class _Item:
    record: ConsumerRecord
    kind: str  # its ce_type header ("?" when it has none)
    applies: bool = False  # a type the service handles (and not one of its own events it skips)
    event: EventBase | None = None
    unreadable: str | None = None  # why the record cannot be read as an event


@dataclass
class _Outcome:
    next_offset: int | None = None  # commit up to here (exclusive)
    failed_at: int | None = None  # offset to retry from, after a backoff
    parked: list[_Parked] = field(default_factory=list)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, owner: EventConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        # A rebalance: until the next assignment this member cannot say what it is behind.
        self.owner.joined = False
        # What was handled is committed before the partitions move, so their next owner
        # starts after it (bounded: a coordinator that does not answer must not hold the rebalance).
        await self.owner._flush_commits(REVOKE_COMMIT_SECONDS)
        for tp in revoked:
            self.owner._forget(tp)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("%s assigned %d partitions", self.owner.service, len(assigned))
        # Before the lag of a partition is reported, where the group stands on it: without
        # this a restarted member counted the whole partition as lag until its first commit.
        await self.owner._learn_committed(list(assigned))
        self.owner.joined = True


class EventConsumer:
    def __init__(
        self,
        *,
        service: str,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        handles: frozenset[str],
        batch_handler: BatchHandler,
        new_uow: Callable[[], UnitOfWork],
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        max_backoff_seconds: float = 10,
        batch_size: int = 500,
        session_timeout_ms: int = 10_000,
        fetch_max_wait_ms: int = 500,
        epoch_check_seconds: float = 1.0,
        skip_producers: frozenset[str] = frozenset(),
        requires: Requires | None = None,
        hold_seconds: float = 24 * 3600,
        hold_per_case: int = 50,
        hold_total: int = 100_000,
        hold_check_seconds: float = 5.0,
        tracer: Tracer | None = None,
    ) -> None:
        self.service = service
        # None: tracing is off. Else each event is applied under a span continuing its
        # producer's trace (shared.tracing.applying); ``_carried``: those producers' contexts,
        # by event id, for the records in hand.
        self.tracer = tracer
        self._carried: dict[object, Context] = {}
        # Causes an event type waits for (shared.holding), and how long / how many may wait.
        self.requires: Requires = dict(requires or {})
        self._causes = holding.cause_types(self.requires)
        self.hold_seconds = hold_seconds
        self.hold_per_case = hold_per_case
        self.hold_total = hold_total
        self.hold_check_seconds = hold_check_seconds
        self._hold_checked_at = 0.0
        # Dead letters made inside the transaction in hand (holding limits): copied to the
        # DLQ topic once it commits.
        self._parked_now: list[_Parked] = []
        # The event types applied (the others are skipped unread), and the one handler that
        # applies them: a whole batch, or one event as a batch of one (see the module's doc).
        self.handles = frozenset(handles)
        self.batch_handler = batch_handler
        self.skip_producers = skip_producers
        # Events from these producers are skipped unread (a service that applies its own
        # events inline); compared on the ce_source header.
        self._skip_sources = frozenset(f"{SOURCE_PREFIX}{name}" for name in skip_producers)
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.group_id = group_id
        self.new_uow = new_uow
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.batch_size = batch_size
        self.session_timeout_ms = session_timeout_ms
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.epoch_check_seconds = epoch_check_seconds

        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._attempts: dict[tuple[TopicPartition, int], int] = {}
        self._paused_until: dict[TopicPartition, float] = {}
        # Where handling stands per assigned partition (exclusive): the offsets handled, or
        # the group's committed offset when the partition was assigned. The lag counts from here.
        self._committed: dict[TopicPartition, int] = {}
        # Offsets handled but not yet committed to the group, and the one commit in flight.
        self._to_commit: dict[TopicPartition, int] = {}
        self._committer: asyncio.Task[None] | None = None
        # When offset commits began to fail (epoch seconds), None while they succeed: /ready says it.
        self.commits_failing_since: float | None = None
        self._epoch: str | None = None
        self._epoch_checked_at = 0.0
        # Timestamp (ms) of the oldest fetched record not yet handled, per partition: the
        # age behind the lag gauge in seconds.
        self._head_ts: dict[TopicPartition, int] = {}
        self._exported: set[int] = set()
        self._learn_tried_at = 0.0
        self.handled = 0
        self.running = False
        # True once the group has assigned this member its partitions (False again during a
        # rebalance): before that its lag is unknown, not zero.
        self.joined = False
        # What the loop is waiting on, and since when (monotonic): read by the watchdog, so
        # a loop stuck inside a client call says where in the log instead of going silent.
        self._step: tuple[str, float] | None = None
        self._fetch_failing_since: float | None = None  # every fetch since then raised (monotonic)
        self._watchdog: asyncio.Task[None] | None = None
        self._unassigned_since: float | None = time.monotonic()
        self._epoch_failing_since: float | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def like(self) -> EventConsumer:
        """A new, unstarted consumer configured as this one (after a stop, to start over)."""
        return EventConsumer(
            service=self.service, bootstrap_servers=self.bootstrap_servers, topic=self.topic, group_id=self.group_id,
            handles=self.handles, batch_handler=self.batch_handler, new_uow=self.new_uow, max_attempts=self.max_attempts,
            backoff_seconds=self.backoff_seconds, max_backoff_seconds=self.max_backoff_seconds, batch_size=self.batch_size,
            session_timeout_ms=self.session_timeout_ms, fetch_max_wait_ms=self.fetch_max_wait_ms,
            epoch_check_seconds=self.epoch_check_seconds, skip_producers=self.skip_producers,
            requires=self.requires, hold_seconds=self.hold_seconds,
            hold_per_case=self.hold_per_case, hold_total=self.hold_total, hold_check_seconds=self.hold_check_seconds,
            tracer=self.tracer,
        )  # fmt: skip

    async def start(self) -> None:
        await self._start_client()
        self._epoch = await read_epoch(self.bootstrap_servers)
        self._epoch_checked_at = time.monotonic()
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-consumer")
        self._watchdog = asyncio.create_task(self._watch(), name=f"{self.service}-consumer-watchdog")

    async def _start_client(self) -> None:
        self._consumer = AIOKafkaConsumer(**client_options(self))
        self._consumer.subscribe([self.topic], listener=_Rebalance(self))
        await self._consumer.start()

    async def _renew(self, why: str) -> None:
        """Replace a stalled Kafka client by a new one, as a restart of the process would:
        the loop is cancelled (a batch half applied is rolled back and fetched again; the
        inbox drops what was applied), the old client stopped within a bound, and the new
        one joins the group afresh from the group's committed offsets."""
        log.warning("%s renews its Kafka consumer: %s", self.service, why)
        metrics.CONSUMER_RENEWALS.labels(self.service).inc()
        await stop_task(self._task, grace=0)
        await self._drop_commits()
        await self._stop_client()
        for tp in {*self._committed, *self._paused_until, *self._head_ts}:
            self._forget(tp)
        self.joined = False
        self._step = None
        self._fetch_failing_since = None
        try:
            await self._start_client()
        except Exception as exc:  # noqa: BLE001 - the loop stays ended: the watchdog's next look tries again
            log.warning("%s could not start a new Kafka consumer (trying again in %.0fs): %r", self.service, WATCH_EVERY_SECONDS, exc)
            await self._stop_client()
            return
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-consumer")

    async def _stop_client(self) -> None:
        """Stop the Kafka client, bounded: a stuck one may wait on a dead coordinator."""
        old, self._consumer = self._consumer, None
        if old is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(RENEW_STOP_SECONDS):
                    await old.stop()

    async def stop(self, grace_seconds: float = 10) -> None:
        """Finish the batch in hand (its commit included), then leave the group."""
        self._stopping = True
        # The watchdog first: it must not renew the client while the loop winds down.
        await stop_task(self._watchdog, grace=0)
        await stop_task(self._task, grace=grace_seconds)
        await self._flush_commits(REVOKE_COMMIT_SECONDS)
        await self._drop_commits()
        await self._stop_client()
        # A stopped member reports no lag of its own: its last figures would pass for current
        # (``refresh_gauges`` measures a stopped service's group from the broker instead).
        self._unexport(self._exported)
        self._exported = set()

    def committed_offsets(self) -> dict[int, int]:
        """Where this member's handling stands, per assigned partition (exclusive): what it
        committed, or else what the group had committed when the partition was assigned
        (the log start when the group never committed there)."""
        return {tp.partition: offset for tp, offset in self._committed.items()}

    def lag(self) -> dict[int, int | None]:
        """Messages not yet handled per assigned partition: the high-water mark of the last
        fetch (which the development broker reports correctly, unlike end_offsets) less the
        committed offset. None while either is unknown (just after an assignment): never the
        whole partition counted as lag because the committed offset was not read yet."""
        consumer = self._consumer
        if consumer is None:
            return {}
        return {
            tp.partition: partition_lag(consumer.highwater(tp), self._committed.get(tp))
            for tp in consumer.assignment()
        }

    def lag_total(self, lag: dict[int, int | None] | None = None) -> int | None:
        """The messages behind on every assigned partition, or None while that is unknown
        (not yet assigned its partitions, or a partition's lag not known yet)."""
        return total_lag(self.lag() if lag is None else lag, joined=self.joined)

    def lag_seconds(self, lag: dict[int, int | None] | None = None) -> dict[int, float]:
        """Per assigned partition whose lag is known, the age of the oldest unhandled message
        (0 when caught up), from the timestamps of the records fetched last."""
        lag = self.lag() if lag is None else lag
        now_ms = time.time() * 1000
        out: dict[int, float] = {}
        for tp, ts in list(self._head_ts.items()):
            if lag.get(tp.partition):
                out[tp.partition] = max(0.0, (now_ms - ts) / 1000)
        return {partition: out.get(partition, 0.0) for partition, behind in lag.items() if behind is not None}

    async def _learn_committed(self, tps: list[TopicPartition]) -> None:
        """Read the group's committed offsets of ``tps`` (the log start where it has none,
        as ``auto_offset_reset=earliest`` starts there) into ``_committed``. Bounded: on a
        failure the partitions stay unknown and the loop tries again a second later."""
        consumer = self._consumer
        self._learn_tried_at = time.monotonic()
        if consumer is None or not tps:
            return
        try:
            async with asyncio.timeout(5):
                committed = await asyncio.gather(*(consumer.committed(tp) for tp in tps))
                beginning = await consumer.beginning_offsets(tps)
        except Exception as exc:  # the broker busy or gone: the lag stays unknown meanwhile
            log.info("%s could not read the committed offsets of %d partitions yet: %r", self.service, len(tps), exc)
            return
        for tp, offset in zip(tps, committed, strict=True):
            if tp in beginning:
                # A commit of our own made meanwhile is newer: keep it.
                self._committed.setdefault(tp, handled_from(offset, beginning[tp]))

    async def _learn_missing_committed(self, consumer: AIOKafkaConsumer) -> None:
        """Partitions assigned whose committed offset is still unknown (a failed read on
        assignment, or forgotten after a fresh broker): read again, at most once a second."""
        if time.monotonic() - self._learn_tried_at < 1.0:
            return
        missing = [tp for tp in consumer.assignment() if tp not in self._committed]
        if missing:
            await self._learn_committed(missing)

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        self.running = True
        try:
            while not self._stopping:
                self._resume_due(consumer)
                try:
                    with self._doing("fetch"):
                        batch = await consumer.getmany(timeout_ms=self._wait_ms(), max_records=self.batch_size)
                except KafkaError as exc:
                    log.warning("%s fetch failed: %r", self.service, exc)
                    self._fetch_failing_since = self._fetch_failing_since or time.monotonic()
                    await asyncio.sleep(0.5)
                    continue
                self._fetch_failing_since = None
                ready = {tp: records for tp, records in batch.items() if records}
                with self._doing(f"apply {sum(map(len, ready.values()))} events"):
                    if len(ready) > 1 and await self._process_together(consumer, ready):
                        ready = {}
                    for tp, records in ready.items():
                        await self._process_partition(consumer, tp, records)
                with self._doing("epoch check"):
                    await self._maybe_check_epoch(consumer)
                with self._doing("held events check"):
                    await self._maybe_expire_held()
                with self._doing("committed offsets read"):
                    await self._learn_missing_committed(consumer)
                self._export_lag()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s consumer loop died (the watchdog starts a new client)", self.service)
            raise
        finally:
            self.running = False

    @contextlib.contextmanager
    def _doing(self, what: str):  # type: ignore[no-untyped-def]
        self._step = (what, time.monotonic())
        try:
            yield
        finally:
            self._step = None

    async def _watch(self) -> None:
        """Say in the log when the loop has waited on one step for long, and when the member
        has had no partitions for long: the two ways a consumer can stall without an error."""
        warned: tuple[str, float] | None = None
        unjoined_since: float | None = None
        while True:
            await asyncio.sleep(WATCH_EVERY_SECONDS)
            now = time.monotonic()
            step = self._step
            unjoined_since = None if self.joined else (unjoined_since or now)
            why = stall_reason(
                now, step, unjoined_since, RENEW_AFTER_SECONDS, ended=loop_ended(self._task), failing_since=self._fetch_failing_since
            )
            if why is not None and not self._stopping and await self._broker_answers():
                try:
                    await self._renew(why)
                except Exception:  # the watchdog must outlive anything a renewal meets
                    log.exception("%s could not renew its Kafka consumer", self.service)
                unjoined_since = None
                continue
            if step is not None and now - step[1] > STALL_WARN_SECONDS and step != warned:
                log.warning("%s consumer loop has been waiting on %s for %.0fs", self.service, step[0], now - step[1])
                warned = step
            consumer = self._consumer
            if consumer is not None and consumer.assignment():
                self._unassigned_since = None
            elif self._unassigned_since is None:
                self._unassigned_since = now
            elif now - self._unassigned_since > STALL_WARN_SECONDS:
                log.warning(
                    "%s has had no partitions of %s for %.0fs (group %s)",
                    self.service, self.topic, now - self._unassigned_since, self.group_id,
                )  # fmt: skip
                self._unassigned_since = now  # once per period, not every tick

    async def _broker_answers(self) -> bool:
        """Whether the broker answers now: a client stalled while it does not is waiting
        for it, and a new client would wait the same."""
        try:
            async with asyncio.timeout(EPOCH_TIMEOUT_SECONDS):
                await read_epoch(self.bootstrap_servers)
        except Exception:  # noqa: BLE001 - gone or fresh-and-empty: not the client's fault
            return False
        return True

    def _wait_ms(self) -> int:
        """How long a fetch may wait for records: ``getmany`` returns as soon as records come,
        so waiting longer costs no latency; it only bounds how often an idle loop wakes (its
        checks below run at most once a second anyway) — until a paused partition is due back."""
        return fetch_wait_ms(self._paused_until.values(), time.monotonic())

    def _resume_due(self, consumer: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        for tp, until in list(self._paused_until.items()):
            if until <= now:
                del self._paused_until[tp]
                if tp in consumer.assignment():
                    consumer.resume(tp)

    def _forget(self, tp: TopicPartition) -> None:
        self._paused_until.pop(tp, None)
        self._committed.pop(tp, None)
        self._to_commit.pop(tp, None)
        self._head_ts.pop(tp, None)
        for key in [k for k in self._attempts if k[0] == tp]:
            del self._attempts[key]

    async def _process_together(self, consumer: AIOKafkaConsumer, ready: dict[TopicPartition, list[ConsumerRecord]]) -> bool:
        """Every partition's batch in one transaction and one offset commit: at a few events
        per partition per fetch, one transaction per partition costs a commit (a WAL flush)
        per event or two. False when anything failed (a handler, the database): nothing was
        written, and the caller applies each partition on its own, which finds the bad event
        and backs off only its partition."""
        started = time.perf_counter()
        for tp, records in ready.items():
            if records[0].timestamp is not None and records[0].timestamp >= 0:
                self._head_ts[tp] = records[0].timestamp
        outcomes = {tp: _Outcome() for tp in ready}
        self._parked_now = []
        self._carried.clear()
        try:
            async with self.new_uow() as uow:
                todo: list[_Item] = []
                for tp, records in ready.items():
                    todo += await self._settle(uow, self._read(records), outcomes[tp])
                handled = await self._apply_all(uow, todo)
                await uow.commit()
        except Exception as exc:
            log.debug("%s applies %d partitions one by one after: %r", self.service, len(ready), exc)
            return False
        self.handled += handled
        metrics.BATCH_SECONDS.labels(self.service).observe(time.perf_counter() - started)
        for tp, outcome in outcomes.items():
            if outcome.parked:
                await self._publish_dead_letters(tp, outcome.parked)
        await self._publish_parked_now()
        self._commit_later(consumer, {tp: o.next_offset for tp, o in outcomes.items() if o.next_offset is not None})
        return True

    async def _process_partition(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord]
    ) -> None:
        started = time.perf_counter()
        if records[0].timestamp is not None and records[0].timestamp >= 0:
            self._head_ts[tp] = records[0].timestamp
        try:
            outcome = await self._apply(tp, records, isolate=False)
        except _HandlerFailed:
            # Again one event at a time (each a batch of one) to keep the good ones and find the bad one.
            try:
                outcome = await self._apply(tp, records, isolate=True)
            except Exception as exc:
                await self._retry_later(consumer, tp, records[0].offset, exc, infrastructure=True)
                return
        except Exception as exc:
            await self._retry_later(consumer, tp, records[0].offset, exc, infrastructure=True)
            return
        metrics.BATCH_SECONDS.labels(self.service).observe(time.perf_counter() - started)

        if outcome.parked:
            await self._publish_dead_letters(tp, outcome.parked)
        await self._publish_parked_now()
        if outcome.next_offset is not None:
            self._commit_later(consumer, {tp: outcome.next_offset})
        if outcome.failed_at is not None:
            self._head_ts[tp] = next((r.timestamp for r in records if r.offset == outcome.failed_at), self._head_ts.get(tp, 0))
            await self._retry_later(consumer, tp, outcome.failed_at, None, infrastructure=False)

    async def _apply(self, tp: TopicPartition, records: list[ConsumerRecord], *, isolate: bool) -> _Outcome:
        """Apply a partition batch in one transaction; returns what to commit and retry."""
        outcome = _Outcome()
        self._parked_now = []
        self._carried.clear()
        async with self.new_uow() as uow:
            if isolate:
                await self._apply_isolated(uow, tp, self._read(records), outcome)
            else:
                self.handled += await self._apply_all(uow, await self._settle(uow, self._read(records), outcome))
            await uow.commit()
        return outcome

    def _read(self, records: list[ConsumerRecord]) -> list[_Item]:
        """Each record, whether it is applied (not: a type this service does not handle, or
        its own events when it skips them) and its event, or why it cannot be read."""
        items = []
        for record in records:
            attrs = attributes(record.headers)
            kind = attrs.get("ce_type") or "?"
            item = _Item(record, kind, applies=kind in self.handles)
            if item.applies and self._skip_sources and attrs.get("ce_source") in self._skip_sources:
                item.applies = False
            if item.applies:
                try:
                    item.event = from_attributes(record.value, attrs)
                except MalformedEvent as exc:
                    item.unreadable = str(exc)
                else:
                    if self.tracer is not None and (carried := tracing.context_of(attrs)) is not None:
                        self._carried[item.event.id] = carried
            items.append(item)
        return items

    async def _settled(self, uow: UnitOfWork, item: _Item, outcome: _Outcome) -> bool:
        """A record with nothing to apply: skipped unread, or parked at once when it cannot
        be read (no retry can help it). True when it was one of those."""
        if not item.applies:
            metrics.EVENTS_HANDLED.labels(self.service, item.kind, "skipped").inc()
        elif item.unreadable is not None:
            outcome.parked.append(_Parked(item.record, item.unreadable, 1))
            await self._park(uow, item.record, item.unreadable, 1)
        else:
            return False
        outcome.next_offset = item.record.offset + 1
        return True

    async def _settle(self, uow: UnitOfWork, items: list[_Item], outcome: _Outcome) -> list[_Item]:
        """The records to apply, the others settled; the offset moves past them all (the
        caller's commit covers them, or its failure leaves them all to be fetched again)."""
        todo = [item for item in items if not await self._settled(uow, item, outcome)]
        if items:
            outcome.next_offset = items[-1].record.offset + 1
        return todo

    async def _apply_all(self, uow: UnitOfWork, items: list[_Item]) -> int:
        """The events through the handler, all at once; how many were new. Raises _HandlerFailed."""
        items = await self._hold_waiting(uow, items)
        if not items:
            return 0
        fresh = await self._handle_batch(uow, [item.event for item in items])  # type: ignore[misc]
        return fresh + await self._release_held(uow, [item.event for item in items])  # type: ignore[misc]

    async def _apply_isolated(self, uow: UnitOfWork, tp: TopicPartition, items: list[_Item], outcome: _Outcome) -> None:
        """Event by event, each through the handler as a batch of one under a savepoint, keeping
        the good ones: a failing event is retried after a backoff from its offset
        (``outcome.failed_at``), or parked after ``max_attempts``."""
        for item in items:
            if await self._settled(uow, item, outcome):
                continue
            event, record = item.event, item.record
            assert event is not None
            key = (tp, record.offset)
            if not await self._hold_waiting(uow, [item]):
                outcome.next_offset = record.offset + 1  # held: it is applied when its cause is
                continue
            mark = len(uow.pending)
            savepoint = await uow.session.begin_nested()
            try:
                fresh = await self._handle_batch(uow, [event])
                await savepoint.commit()
            except Exception as exc:
                await savepoint.rollback()
                del uow.pending[mark:]
                attempts = self._attempts.get(key, 0) + 1
                self._attempts[key] = attempts
                metrics.EVENTS_HANDLED.labels(self.service, event.type, "failed").inc()
                error = f"{type(exc).__name__}: {exc}"
                if attempts < self.max_attempts:
                    log.warning(
                        "%s handler failed (attempt %d/%d) for %s %s: %s",
                        self.service, attempts, self.max_attempts, event.type, event.id, error,
                    )
                    outcome.failed_at = record.offset
                    return
                log.error("%s parks %s %s after %d attempts: %s", self.service, event.type, event.id, attempts, error)
                outcome.parked.append(_Parked(record, error, attempts))
                await self._park(uow, record, error, attempts)
                self._attempts.pop(key, None)
                outcome.next_offset = record.offset + 1
                continue
            if fresh:
                self.handled += 1
            self.handled += await self._release_held(uow, [event])
            self._attempts.pop(key, None)
            outcome.next_offset = record.offset + 1

    # -- events ahead of their cause (shared.holding) ---------------------------------------

    async def _hold_waiting(self, uow: UnitOfWork, items: list[_Item]) -> list[_Item]:
        """The items to apply now, in order; each other one (a cause of its case not applied
        here yet, nor earlier in ``items``) is held, or dead-lettered past a holding limit."""
        if not self.requires or not any(item.event.type in self.requires for item in items):  # type: ignore[union-attr]
            return items
        case_ids = [i.event.case_id for i in items if i.event.case_id]  # type: ignore[union-attr]
        known = await holding.known_causes(uow.session, case_ids)
        # A producer's later event of a case waits behind its earlier one held (here or before):
        # Kafka kept that order, holding must not break it.
        behind = await holding.producers_held(uow.session, case_ids)
        ready = []
        for item in items:
            event = item.event
            assert event is not None
            seen = known.setdefault(event.case_id, set()) if event.case_id else set()
            if (event.case_id, event.producer) in behind or holding.waiting_for(event, self.requires, seen):
                await self._hold(uow, item.record, event)
                if event.case_id:
                    behind.add((event.case_id, event.producer))
                continue
            ready.append(item)
            if event.type in self._causes:
                seen.add(event.type)
        return ready

    async def _hold(self, uow: UnitOfWork, record: ConsumerRecord, event: EventBase) -> None:
        for_case, total = await holding.counts(uow.session, event.case_id)  # type: ignore[arg-type]
        if for_case >= self.hold_per_case or total >= self.hold_total:
            error = (
                f"CauseNotYetKnown: {event.type} waits for {sorted(holding.waiting_for(event, self.requires, set()))} "
                f"and the holding limit is reached ({for_case} held for the case, {total} in all)"
            )
            log.error("%s dead-letters %s %s: %s", self.service, event.type, event.id, error)
            self._parked_now.append(_Parked(record, error, 1))
            await self._park(uow, record, error, 1)
            return
        await holding.hold(
            uow.session, event=event, topic=record.topic, partition=record.partition, offset=record.offset,
            key=record.key, headers=[[k, v.decode(errors="replace")] for k, v in record.headers or ()], body=record.value,
        )  # fmt: skip
        log.info("%s holds %s %s of case %s until its cause arrives", self.service, event.type, event.id, event.case_id)
        metrics.EVENTS_HANDLED.labels(self.service, event.type, "held").inc()

    async def _release_held(self, uow: UnitOfWork, applied: list[EventBase]) -> int:
        """Record the causes among ``applied`` and apply the held events of their cases that
        no longer wait, in the order they were held, each under a savepoint (a failing one
        stays held with a try counted, and is dead-lettered after ``max_attempts``). Returns
        how many were applied."""
        if not self.requires:
            return 0
        session = uow.session
        await holding.record_causes(session, ((e.case_id, e.type) for e in applied if e.case_id and e.type in self._causes))
        cases = await holding.cases_with_held(session, (e.case_id for e in applied if e.case_id))
        released = 0
        while cases:
            known = await holding.known_causes(session, cases)
            progressed: set[str] = set()
            stuck: set[tuple[str, str]] = set()  # (case, producer) with an earlier event still held
            for held in await holding.held_of(session, cases):
                event = from_attributes(held.body, attributes([(k, v.encode()) for k, v in held.headers]))
                own = (held.case_id, event.producer)
                if held.event_type not in self.handles or own in stuck or holding.waiting_for(event, self.requires, known[held.case_id]):
                    stuck.add(own)
                    continue
                mark = len(uow.pending)
                savepoint = await session.begin_nested()
                try:
                    released += await self._handle_batch(uow, [event])
                    await savepoint.commit()
                except Exception as exc:
                    await savepoint.rollback()
                    del uow.pending[mark:]
                    error = f"{type(exc).__name__}: {exc}"
                    metrics.EVENTS_HANDLED.labels(self.service, event.type, "failed").inc()
                    if held.tries + 1 >= self.max_attempts:
                        log.error("%s parks held %s %s after %d attempts: %s", self.service, event.type, event.id, held.tries + 1, error)
                        await self._park_held(uow, held, error, held.tries + 1)
                    else:
                        await holding.failed(session, held.id, error)
                        stuck.add(own)
                    continue
                await holding.release(session, held.id)
                if event.type in self._causes and event.type not in known[held.case_id]:
                    known[held.case_id].add(event.type)
                    await holding.record_causes(session, [(held.case_id, event.type)])
                    progressed.add(held.case_id)
            cases = sorted(progressed)
        return released

    async def _park_held(self, uow: UnitOfWork, held: holding.Held, error: str, attempts: int) -> None:
        """A held event into ``dead_letters`` (as it came from the topic) and out of ``held_events``."""
        record = ConsumerRecord(
            topic=held.topic, partition=held.partition, offset=held.offset, timestamp=-1, timestamp_type=0,
            key=held.key, value=held.body, checksum=None, serialized_key_size=-1, serialized_value_size=-1,
            headers=tuple((k, v.encode()) for k, v in held.headers),
        )  # fmt: skip
        self._parked_now.append(_Parked(record, error, attempts))
        await self._park(uow, record, error, attempts)
        await holding.release(uow.session, held.id)

    async def _publish_parked_now(self) -> None:
        """Copy to the DLQ topic the dead letters the committed transaction made of held events."""
        parked, self._parked_now = self._parked_now, []
        by_tp: dict[TopicPartition, list[_Parked]] = {}
        for item in parked:
            by_tp.setdefault(TopicPartition(item.record.topic, item.record.partition), []).append(item)
        for tp, items in by_tp.items():
            await self._publish_dead_letters(tp, items)

    async def _maybe_expire_held(self) -> None:
        """Every ``hold_check_seconds``: dead-letter events held longer than ``hold_seconds``
        (their cause is not coming) and refresh the held gauges."""
        if not self.requires or time.monotonic() - self._hold_checked_at < self.hold_check_seconds:
            return
        self._hold_checked_at = time.monotonic()
        self._parked_now = []
        try:
            async with self.new_uow() as uow:
                for held in await holding.expired(uow.session, self.hold_seconds):
                    error = f"CauseNotYetKnown: {held.event_type} held over {self.hold_seconds:.0f}s without its cause"
                    log.error("%s parks held %s %s: %s", self.service, held.event_type, held.event_id, error)
                    await self._park_held(uow, held, error, held.tries + 1)
                count, oldest = await holding.summary(uow.session)
                await uow.commit()
        except Exception as exc:  # the database busy or gone: next time
            self._parked_now = []
            log.warning("%s could not check its held events: %r", self.service, exc)
            return
        await self._publish_parked_now()
        metrics.HELD_EVENTS.labels(self.service).set(count)
        metrics.HELD_OLDEST_SECONDS.labels(self.service).set(oldest)

    async def _handle_batch(self, uow: UnitOfWork, events: list[EventBase]) -> int:
        """Inbox check for the whole batch + the handler on the new events. Returns how
        many were new. Raises _HandlerFailed (then the batch is applied event by event)."""
        ids: set = set()
        unique_events = [e for e in events if not (e.id in ids or ids.add(e.id))]  # a resend within the batch
        inserted = await uow.session.execute(
            _RECORD_PROCESSED_MANY,
            {"event_ids": [e.id for e in unique_events], "event_types": [e.type for e in unique_events]},
        )
        new_ids = set(inserted.scalars())
        fresh = [e for e in unique_events if e.id in new_ids]
        for event in events:
            if event.id not in new_ids:
                metrics.EVENTS_HANDLED.labels(self.service, event.type, "duplicate").inc()
            else:
                new_ids.discard(event.id)  # the second copy of an id in the batch is a duplicate
        if not fresh:
            return 0
        started = time.perf_counter()
        # One event alone (a trickle, or a failed batch applied event by event): its ids in the logs.
        with bind_event_context(fresh[0]) if len(fresh) == 1 else contextlib.nullcontext():
            try:
                with tracing.applying(self.tracer, self.topic, fresh, self._carried, uow.traces):
                    await self.batch_handler(uow, fresh)
            except Exception as exc:
                raise _HandlerFailed(exc) from exc
        kinds = {event.type for event in fresh}
        metrics.HANDLER_SECONDS.labels(self.service, kinds.pop() if len(kinds) == 1 else "mixed").observe(
            time.perf_counter() - started
        )
        for event in fresh:
            metrics.EVENTS_HANDLED.labels(self.service, event.type, "handled").inc()
        return len(fresh)

    async def _park(self, uow: UnitOfWork, record: ConsumerRecord, error: str, attempts: int) -> None:
        await uow.session.execute(
            pg_insert(dead_letters)
            .values(
                event_id=header(record.headers, "ce_id"),
                event_type=header(record.headers, "ce_type"),
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                headers=[[k, v.decode(errors="replace")] for k, v in record.headers or ()],
                body=record.value,
                error=error[:4000],
                attempts=attempts,
            )
            .on_conflict_do_nothing()
        )
        metrics.EVENTS_HANDLED.labels(self.service, header(record.headers, "ce_type") or "?", "dead_lettered").inc()

    async def _publish_dead_letters(self, tp: TopicPartition, parked: list[_Parked]) -> None:
        """Copy parked events to the DLQ topic (the dead_letters row is already committed)."""
        producer = new_producer(self.bootstrap_servers, f"{self.service}-dlq")
        try:
            async with asyncio.timeout(DLQ_TIMEOUT_SECONDS):
                await producer.start()
                for item in parked:
                    extra = [
                        ("dlq_error", item.error[:4000].encode()),
                        ("dlq_attempts", str(item.attempts).encode()),
                        ("dlq_service", self.service.encode()),
                        ("dlq_original", f"{tp.topic}/{tp.partition}/{item.record.offset}".encode()),
                    ]
                    await producer.send_and_wait(
                        dlq_topic(self.topic, self.service),
                        value=item.record.value,
                        key=item.record.key,
                        headers=list(item.record.headers or ()) + extra,
                    )
        except Exception as exc:  # the dead_letters table still has it
            log.error("%s could not copy %d dead letters to the DLQ topic: %r", self.service, len(parked), exc)
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()

    def _commit_later(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Record the batch as handled and commit its offsets in the background: the loop goes
        on to the next batch at once. The commit only saves a restarted or new owner from
        fetching events its inbox would drop; waiting on it cost the loop up to
        COMMIT_TIMEOUT_SECONDS a batch when a fresh development broker answered every commit
        with UNKNOWN_TOPIC_OR_PARTITION for minutes (issue #22). One commit runs at a time;
        offsets handled meanwhile go in the next, newest per partition."""
        if not offsets:
            return
        self._committed.update(offsets)  # where handling stands: the lag counts from here
        self._to_commit.update(offsets)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_pending(consumer), name=f"{self.service}-commit")

    async def _commit_pending(self, consumer: AIOKafkaConsumer) -> None:
        while self._to_commit:
            offsets, self._to_commit = self._to_commit, {}
            # A partition handed to another member meanwhile is its to commit now.
            assigned = consumer.assignment()
            await self._commit_many(consumer, {tp: o for tp, o in offsets.items() if tp in assigned})

    async def _flush_commits(self, timeout: float) -> None:
        """Let the commit in flight and the pending one finish (a rebalance, a stop), bounded."""
        committer = self._committer
        if committer is not None and not committer.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(committer), timeout)

    async def _drop_commits(self) -> None:
        """Forget what was to be committed and stop the commit in flight: its offsets belong
        to a client or a log that is gone (a renewal, a fresh broker)."""
        self._to_commit.clear()
        await stop_task(self._committer, grace=0)
        self._committer = None

    async def _commit_many(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            # Bounded: aiokafka retries a commit until the group coordinator answers, and
            # after a broker loss that may be never; the events are then fetched again and
            # dropped by the inbox.
            async with asyncio.timeout(COMMIT_TIMEOUT_SECONDS):
                await consumer.commit(offsets)
            self.commits_failing_since = None
            return
        except TimeoutError:
            log.warning(
                "%s offset commit on %s got no answer in %.0fs (events will be redelivered and dropped)",
                self.service, sorted(offsets), COMMIT_TIMEOUT_SECONDS,
            )  # fmt: skip
        except CommitFailedError as exc:
            # The partition moved to another member during a rebalance. Its new owner will
            # see these events again and its inbox will drop them: nothing to undo.
            log.info("%s offset commit lost to a rebalance on %s: %s", self.service, sorted(offsets), exc)
            return
        except KafkaError as exc:
            log.warning(
                "%s offset commit failed on %s: %r (events will be redelivered and dropped)", self.service, sorted(offsets), exc
            )
        metrics.CONSUMER_COMMIT_FAILURES.labels(self.service).inc()
        if self.commits_failing_since is None:
            self.commits_failing_since = time.time()

    async def _retry_later(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, exc: Exception | None, *, infrastructure: bool
    ) -> None:
        if tp not in consumer.assignment():
            return
        attempts = self._attempts.get((tp, offset), 1)
        delay = min(self.max_backoff_seconds, self.backoff_seconds * (2 ** max(0, attempts - 1)))
        if infrastructure:
            log.warning("%s cannot apply a batch on %s (retrying in %.1fs): %r", self.service, tp, delay, exc)
        consumer.seek(tp, offset)
        consumer.pause(tp)
        self._paused_until[tp] = time.monotonic() + delay

    async def _maybe_check_epoch(self, consumer: AIOKafkaConsumer) -> None:
        now = time.monotonic()
        if now - self._epoch_checked_at < self.epoch_check_seconds:
            return
        self._epoch_checked_at = now
        try:
            async with asyncio.timeout(EPOCH_TIMEOUT_SECONDS):
                epoch = await read_epoch(self.bootstrap_servers)
        except Exception as exc:
            # Once when the broker stops answering, and once a minute while it does not.
            if self._epoch_failing_since is None or now - self._epoch_failing_since > 60:
                log.info("%s cannot read the broker epoch: %r", self.service, exc)
                self._epoch_failing_since = now
            return
        self._epoch_failing_since = None
        if epoch is None:
            return
        if self._epoch is not None and epoch != self._epoch:
            # A fresh broker: our positions point into a log that no longer exists.
            assigned = list(consumer.assignment())
            log.warning("%s sees a fresh broker; re-reading %d partitions from the start", self.service, len(assigned))
            # Offsets of the old log must not reach the new one's group.
            await self._drop_commits()
            for tp in assigned:
                self._forget(tp)
                consumer.resume(tp)
            if assigned:
                await consumer.seek_to_beginning(*assigned)
        self._epoch = epoch

    def _export_lag(self) -> None:
        lag = self.lag()
        seconds = self.lag_seconds(lag)
        known = {partition: behind for partition, behind in lag.items() if behind is not None}
        for partition, behind in known.items():
            metrics.CONSUMER_LAG.labels(self.service, self.topic, str(partition)).set(behind)
            metrics.CONSUMER_LAG_SECONDS.labels(self.service, self.topic, str(partition)).set(seconds[partition])
        # Partitions handed to another member are that member's to report; a partition whose
        # lag is not known yet has no sample (absent, not a guess) until it is.
        self._unexport(self._exported - set(known))
        self._exported = set(known)

    def _unexport(self, partitions: set[int]) -> None:
        for partition in partitions:
            for gauge in (metrics.CONSUMER_LAG, metrics.CONSUMER_LAG_SECONDS):
                with contextlib.suppress(KeyError):
                    gauge.remove(self.service, self.topic, str(partition))


def client_options(consumer: EventConsumer) -> dict[str, Any]:
    """The Kafka client's settings for ``consumer``."""
    return {
        "bootstrap_servers": consumer.bootstrap_servers,
        "group_id": consumer.group_id,
        "client_id": f"{consumer.service}-consumer",
        "enable_auto_commit": False,
        # A new group reads from the beginning: the topic is the source of truth.
        "auto_offset_reset": "earliest",
        "max_poll_records": consumer.batch_size,
        "session_timeout_ms": consumer.session_timeout_ms,
        # A tenth of the session: a member misses several heartbeats before it counts as gone.
        "heartbeat_interval_ms": max(100, consumer.session_timeout_ms // 10),
        # How long the broker may hold a fetch with nothing new (``CONSUMER_FETCH_MAX_WAIT_MS``).
        "fetch_max_wait_ms": consumer.fetch_max_wait_ms,
        # Longer than a rebalance may take (aiokafka waits up to the session for it) and than a
        # held fetch.
        "request_timeout_ms": max(15_000, consumer.session_timeout_ms + 5_000, consumer.fetch_max_wait_ms + 5_000),
    }


def fetch_wait_ms(paused_until: Iterable[float], now: float) -> int:
    """The consumer loop's wait for records: ``IDLE_WAIT_SECONDS``, or less when a paused
    partition is due back sooner (never under 10 ms)."""
    wait = min((until - now for until in paused_until), default=IDLE_WAIT_SECONDS)
    return round(1000 * max(0.01, min(IDLE_WAIT_SECONDS, wait)))


def handled_from(committed: int | None, log_start: int) -> int:
    """Where a member resumes a partition: the group's committed offset, or the log start
    when the group never committed there or its offset was deleted by retention (the
    consumer's ``auto_offset_reset=earliest`` starts there; what lies before is gone)."""
    return log_start if committed is None else max(committed, log_start)


def stall_reason(
    now: float,
    step: tuple[str, float] | None,
    unjoined_since: float | None,
    after: float,
    *,
    ended: str | None = None,
    failing_since: float | None = None,
) -> str | None:
    """Why a member counts as stalled (its client to be renewed), or None: its loop has
    ended on an error (``ended``, at once: nothing else would start it again), has waited
    inside one fetch for ``after`` seconds (aiokafka's fetch waits for a rebalance to end,
    without a bound), every fetch has failed for that long (a client whose coordination
    task died fails each fetch with the same error for good), or it has been out of its
    group (a rebalance begun and never finished) that long. A long apply is not a stall of
    the client: the database or a handler holds it, and a new client would not help."""
    if ended is not None:
        return f"its loop ended: {ended}"
    if failing_since is not None and now - failing_since >= after:
        return f"every fetch has failed for {now - failing_since:.0f}s"
    if step is not None and step[0] == "fetch" and now - step[1] >= after:
        return f"its loop has waited inside a fetch for {now - step[1]:.0f}s"
    if unjoined_since is not None and now - unjoined_since >= after:
        return f"it has been out of its group (a rebalance not finished) for {now - unjoined_since:.0f}s"
    return None


def loop_ended(task: asyncio.Task[None] | None) -> str | None:
    """What ended a consumer loop that is not running any more (its error, or that it was
    cancelled), or None while it runs or before it started."""
    if task is None or not task.done():
        return None
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return repr(error) if error is not None else "returned"


def partition_lag(highwater: int | None, committed: int | None) -> int | None:
    """Messages of a partition not yet handled; None (unknown) while the high-water mark
    (no fetch answered yet) or the committed offset (not read yet) is missing."""
    if highwater is None or committed is None:
        return None
    return max(0, highwater - committed)


def total_lag(lag: dict[int, int | None], *, joined: bool) -> int | None:
    """Messages behind on all assigned partitions; None while any of them is unknown or the
    member has no assignment yet (a sum over what is known would pass for the whole)."""
    if not joined or any(behind is None for behind in lag.values()):
        return None
    return sum(behind for behind in lag.values() if behind is not None)


class _HandlerFailed(Exception):
    """The handler raised: the batch is applied again event by event to isolate the bad one."""


async def dead_letter_count(new_uow: Callable[[], UnitOfWork]) -> int:
    async with new_uow() as uow:
        return int(
            (await uow.session.execute(select(func.count()).select_from(dead_letters).where(dead_letters.c.status == "parked"))).scalar()
            or 0
        )
