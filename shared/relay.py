"""The outbox relay: publishes committed outbox rows to Kafka, in order, then marks them sent.

Why it is built this way:
- It selects ``sent_at IS NULL`` rather than "ids above the last one sent", so a
  transaction that took an id early but committed late is never skipped.
- One relay per service database publishes at a time (a PostgreSQL advisory lock held on
  its own connection): two relays taking rows side by side could put a case's second
  event on the wire before its first. The other replicas stand by and take over within
  a second if the leader dies (its connection, and with it the lock, goes away).
- Rows are sent in id order; aiokafka keeps one batch in flight per partition, so order
  per key holds. On any send failure nothing of the batch is marked and the whole batch
  goes again: consumers drop the duplicates, and nothing is lost.
- It is woken, not polling: a commit that wrote outbox rows calls ``nudge()``. In the
  process that leads, that wakes the relay at once; in any other replica (a follower, whose
  commits the leader in another process must publish) it sends a PostgreSQL ``NOTIFY`` on
  ``OUTBOX_CHANNEL``, which the leader ``LISTEN``s for on its lock connection (both through
  ``shared.wakeup``, as notify's sender and SLA's ticker are woken). The poll
  (``poll_seconds``, seconds) is only a fallback, for rows written by other means (the ops
  CLI, a notification lost with a dropped connection): an idle platform does nothing.
- Sent rows are kept ``outbox_retention_days``; when the broker turns out to be a fresh
  one (its epoch changed, see ``shared.bus``), the retained rows are published again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any
from datetime import timedelta

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import metrics
from shared.tasks import stop_task
from shared.bus import TopicSpec, ensure_epoch, new_producer
from shared.db import outbox, plumbing_state
from shared.wakeup import Wakeup

log = logging.getLogger(__name__)

RELAY_LOCK_KEY = 0x6A6965_7375  # "jiesu": one relay leader per service database
# NOTIFY'd by a replica that committed outbox rows and does not lead (notifications are per
# database, so one name serves every service).
OUTBOX_CHANNEL = "jiesu_outbox"
EPOCH_KEY = "broker_epoch"
# Bounds on the broker calls the relay waits on (seconds). Without them a producer that
# could not deliver to a fresh broker held the relay for minutes without a line in the
# log (issue #22's fault test: intake's outbox stopped after "UnknownError", its backlog
# grew and it never caught up). Past a bound the batch stays unsent and is tried again with
# a new producer; a batch sent twice is dropped by the consumers' inboxes.
PUBLISH_TIMEOUT_SECONDS = 30.0
EPOCH_TIMEOUT_SECONDS = 30.0
PRODUCER_STOP_SECONDS = 5.0


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        service: str,
        bootstrap_servers: str,
        topic: str,
        topics: list[TopicSpec],
        batch_size: int = 500,
        poll_seconds: float = 5.0,
        linger_seconds: float = 0.02,
        retention: timedelta = timedelta(days=7),
        epoch_check_seconds: float = 10.0,
    ) -> None:
        self.engine = engine
        self.service = service
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.topics = topics
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.linger_seconds = linger_seconds
        self.retention = retention
        self.epoch_check_seconds = epoch_check_seconds

        self.wakeup = Wakeup(engine, OUTBOX_CHANNEL, name=f"{service}-relay")
        self._wake = self.wakeup.event
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        self._lock_conn: AsyncConnection | None = None
        self._lock_raw: Any = None  # its asyncpg connection: asked whether the session lives
        self._epoch_checked_at = 0.0
        self._last_failed = True  # check the epoch before the first publish
        self._purged_at = 0.0
        self.is_leader = False
        self.published = 0

    # -- lifecycle ---------------------------------------------------------------------

    def nudge(self) -> None:
        """Called after a commit that wrote outbox rows: publish without waiting for the poll.
        Here when this process leads; else the leader (another replica) is told by NOTIFY."""
        if self.is_leader or self._stopping:
            self._wake.set()
            return
        self.wakeup.notify_others()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-relay")

    async def stop(self, grace_seconds: float = 10) -> None:
        """Stop, publishing what is already committed first (bounded by the grace period)."""
        self._stopping = True
        self._wake.set()
        await stop_task(self._task, grace=grace_seconds)
        await self.wakeup.close()
        await self._release()

    async def _release(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
            self._producer = None
        await self._drop_lock_session(lost=False)

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                if not await self._ensure_leader():
                    if self._stopping:
                        return
                    await self._sleep(1.0)
                    continue
                await self._maybe_check_epoch()
                sent = await self.publish_batch()
                self._last_failed = False
                backoff = 0.1
                await self._maybe_housekeep()
                if sent >= self.batch_size:
                    continue  # more waiting: no sleep
                if self._stopping:
                    return
                await self._sleep(self.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database trouble: back off and retry
                self._last_failed = True
                if self._stopping:
                    log.warning("relay stopping with unpublished rows: %s", exc)
                    return
                log.warning("relay error (retrying in %.1fs): %r", backoff, exc)
                if isinstance(exc, KafkaError | OSError):
                    await self._reset_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        if self._wake.is_set() and not self._stopping and self.linger_seconds > 0:
            # Woken by a commit: let the commits of the next few milliseconds join it. A
            # batch costs about 2 ms of CPU whatever its size (two statements and a produce
            # request); under load, batches of one commit each cost more than the filing.
            await asyncio.sleep(self.linger_seconds)
        self._wake.clear()

    def _lock_session_alive(self) -> bool:
        """Whether the session that holds (or asks for) the advisory lock still lives. A
        database restart ends it, and the lock with it; SQLAlchemy marks a connection
        invalidated only once a statement fails on it, so the driver is asked too."""
        conn = self._lock_conn
        if conn is None or conn.closed or conn.invalidated:
            return False
        return self._lock_raw is not None and not self._lock_raw.is_closed()

    async def _drop_lock_session(self, *, lost: bool = True) -> None:
        if self._lock_conn is not None:
            # Invalidate, not close: closing hands the connection back to the pool with the
            # session's advisory lock still held, and no other relay could lead again.
            with contextlib.suppress(Exception):
                await self._lock_conn.invalidate()
        self._lock_conn = None
        self._lock_raw = None
        if self.is_leader and lost:
            log.warning("relay of %s lost its lock session (a database restart?): leading again only with the lock", self.service)
        self.is_leader = False

    async def _ensure_leader(self) -> bool:
        if self._lock_conn is not None and not self._lock_session_alive():
            await self._drop_lock_session()
        if self.is_leader:
            return True
        if self._lock_conn is None:
            self._lock_conn = await self.engine.connect()
            self._lock_raw = (await self._lock_conn.get_raw_connection()).driver_connection
        try:
            got = (await self._lock_conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": RELAY_LOCK_KEY})).scalar()
            # The lock lives with the session, not a transaction: end the implicit transaction.
            await self._lock_conn.commit()
        except Exception:
            # A failed lock query leaves the session in a failed transaction (PendingRollbackError
            # on every later round, for good): the next round asks on a new one.
            await self._drop_lock_session()
            raise
        if got:
            # Woken by the other replicas' commits (their nudge NOTIFYs), on the connection
            # that holds the lock: it lives exactly as long as the leadership.
            await self.wakeup.listen_on(self._lock_conn)
        self.is_leader = bool(got)
        if self.is_leader:
            log.info("relay of %s is the leader", self.service)
        return self.is_leader

    async def _producer_ready(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = new_producer(self.bootstrap_servers, f"{self.service}-relay")
            await producer.start()
            self._producer = producer
        return self._producer

    async def _reset_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            # stop() first flushes what the producer holds, which a broker that will not take
            # it never lets happen: bounded, then the producer is left to the collector.
            async with asyncio.timeout(PRODUCER_STOP_SECONDS):
                await producer.stop()
        except TimeoutError:
            log.warning("relay of %s left a producer that did not stop in %.0fs (its rows stay unsent in the outbox)",
                        self.service, PRODUCER_STOP_SECONDS)  # fmt: skip
        except Exception:  # a producer that failed to start or stop: a new one is made anyway
            pass

    # -- publishing --------------------------------------------------------------------

    async def publish_batch(self) -> int:
        """Publish up to one batch of unsent rows in id order; returns how many."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.id, outbox.c.key, outbox.c.headers, outbox.c.body)
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.id)
                    .limit(self.batch_size)
                )
            ).all()
            await conn.rollback()
        if not rows:
            return 0
        # A TimeoutError is an OSError: the loop replaces the producer and tries again.
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            producer = await self._producer_ready()
            futures = [
                await producer.send(
                    self.topic,
                    value=row.body,
                    key=row.key.encode(),
                    headers=[(k, v.encode()) for k, v in row.headers],
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
        ids = [row.id for row in rows]
        async with self.engine.begin() as conn:
            await conn.execute(update(outbox).where(outbox.c.id.in_(ids)).values(sent_at=func.now()))
        self.published += len(rows)
        metrics.EVENTS_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    async def flush(self, timeout: float = 10) -> None:
        """Publish everything committed so far (used by tests and at shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.backlog() == 0:
                return
            self._wake.set()
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{self.service} outbox not drained within {timeout}s")

    async def backlog(self) -> int:
        async with self.engine.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)))).scalar()
                or 0
            )

    # -- a fresh broker ----------------------------------------------------------------

    async def _maybe_check_epoch(self) -> None:
        now = time.monotonic()
        if not self._last_failed and now - self._epoch_checked_at < self.epoch_check_seconds:
            return
        async with asyncio.timeout(EPOCH_TIMEOUT_SECONDS):
            epoch = await ensure_epoch(self.bootstrap_servers, self.topics)
        self._epoch_checked_at = now
        async with self.engine.begin() as conn:
            stored = (
                await conn.execute(select(plumbing_state.c.value).where(plumbing_state.c.key == EPOCH_KEY).with_for_update())
            ).scalar()
            if stored == epoch:
                return
            if stored is not None:
                result = await conn.execute(
                    update(outbox).where(outbox.c.sent_at.is_not(None)).values(sent_at=None)
                )
                log.warning(
                    "broker epoch changed (%s → %s): a fresh broker; republishing %d retained events",
                    stored, epoch, result.rowcount,
                )
                metrics.BROKER_RESETS.labels(self.service).inc()
            await conn.execute(
                pg_insert(plumbing_state)
                .values(key=EPOCH_KEY, value=epoch)
                .on_conflict_do_update(index_elements=["key"], set_={"value": epoch, "updated_at": func.now()})
            )

    async def _maybe_housekeep(self) -> None:
        now = time.monotonic()
        if now - self._purged_at < 60:
            return
        self._purged_at = now
        async with self.engine.begin() as conn:
            cutoff = func.now() - self.retention
            # From creation, not from the last send: a refill of a fresh broker stamps sent_at
            # again, and a row kept past its first retention could reach a consumer whose
            # inbox (kept the outbox retention + a margin from applying it) has forgotten it.
            await conn.execute(delete(outbox).where(outbox.c.sent_at.is_not(None), outbox.c.created_at < cutoff))
            oldest = (
                await conn.execute(select(func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None)))
            ).scalar()
        metrics.OUTBOX_OLDEST_UNSENT.labels(self.service).set(
            0 if oldest is None else max(0.0, time.time() - oldest.timestamp())
        )
