"""Publishing every version of the org document on the topic ``org-directory``.

One message per version — key ``b"org"``, header ``ce_type: org.snapshot``, value
``{"version": n, "document": {...}, "changed_at": "…"}`` — on a one-partition topic, so
the versions are in order and a follower reading from the start ends with the newest
(``shared.orgfollow.OrgFollower``).

Publishing happens after the commit, from the database, in one background task: a change
nudges it, it publishes every committed version it has not published yet, in order, and
retries until the broker takes them. On start-up it republishes the current version, so
a crash between commit and publish heals by itself; so it does when the platform epoch
changes (``shared.bus``: the broker is a fresh, empty one), without waiting for a restart of
the directory; followers ignore a version they already have. The outbox is not used because the relay publishes
only to the lifecycle topic; the table of versions is this service's outbox.

The holiday tables (``shared.holidays``) go the same way on their own topic (``holiday-tables``,
compacted, one record per year keyed by the year): a table loaded or replaced is published
after its commit, and every table again on start-up and on a fresh broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from collections.abc import Callable

from aiokafka import AIOKafkaProducer

from services.directory import repository
from shared.tasks import stop_task
from shared.bus import TopicSpec, ensure_epoch, ensure_topics, new_producer
from shared.db import UnitOfWork
from shared.holidays import LoadedTable, encode_table, table_key
from shared.orgfollow import SNAPSHOT_KEY, encode_snapshot
from shared.workdays import HolidayTable

log = logging.getLogger(__name__)

# Without a nudge, look for versions committed elsewhere (another replica) this often.
IDLE_CHECK_SECONDS = 5.0


def topic_spec(topic: str, replication_factor: int) -> TopicSpec:
    # Every follower reads from the start: the snapshots must not expire. Compaction on the
    # one key would keep only the newest, which is all a follower needs; the development
    # broker ignores it, Kafka honours it.
    return TopicSpec(topic, 1, replication_factor, (("retention.ms", "-1"), ("cleanup.policy", "compact")))


class SnapshotPublisher:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        replication_factor: int,
        new_uow: Callable[[], UnitOfWork],
        retry_seconds: float = 1.0,
        epoch_check_seconds: float = 1.0,
        holiday_topic: str | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.replication_factor = replication_factor
        self.new_uow = new_uow
        self.retry_seconds = retry_seconds
        self.epoch_check_seconds = epoch_check_seconds
        self.holiday_topic = holiday_topic
        # year → loaded_at of the table last published; None: publish every table again.
        self.tables_published: dict[int, datetime] | None = None
        # The platform epoch the versions were published under (None: not looked yet).
        self.epoch: str | None = None
        self._epoch_checked_at = 0.0
        # None until the first publish of this process: then the current version is sent
        # again whatever was sent before (the start-up republish).
        self.published: int | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._producer: AIOKafkaProducer | None = None
        self._topic_ready = False

    async def ensure_topic(self) -> None:
        await ensure_topics(self.bootstrap_servers, self._topics())

    def _topics(self) -> list[TopicSpec]:
        topics = [topic_spec(self.topic, self.replication_factor)]
        if self.holiday_topic:
            topics.append(topic_spec(self.holiday_topic, self.replication_factor))
        return topics

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="org-publisher")

    def nudge(self) -> None:
        self._wake.set()

    async def stop(self, grace: float = 10) -> None:
        """Publish what is committed (within ``grace`` seconds), then stop."""
        task, self._task = self._task, None
        if task is None:
            return
        await stop_task(task)
        try:
            await asyncio.wait_for(self._flush_once(), grace)
        except Exception as exc:  # the next start republishes the current version
            log.warning("could not publish the last org versions before stopping: %r", exc)
        await self._close_producer()

    # ------------------------------------------------------------------ internals

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._flush_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("publishing org snapshots to %s failed: %r; retrying in %.1fs", self.topic, exc, self.retry_seconds)
                await self._close_producer()
                self._epoch_checked_at = 0.0  # the broker may be a new one when it answers again
                await asyncio.sleep(self.retry_seconds)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(IDLE_CHECK_SECONDS, self.epoch_check_seconds))

    async def _check_epoch(self) -> None:
        """On a fresh broker (the platform epoch changed) publish the current version again:
        its topic is empty, and a service started now would find no org directory."""
        now = time.monotonic()
        if now - self._epoch_checked_at < self.epoch_check_seconds:
            return
        epoch = await ensure_epoch(self.bootstrap_servers, self._topics())
        self._epoch_checked_at = now
        if self.epoch is not None and epoch != self.epoch:
            log.warning("broker epoch changed (%s → %s): a fresh broker; republishing the current org version", self.epoch, epoch)
            self.published = None
            self.tables_published = None
            self._topic_ready = False
        self.epoch = epoch

    async def _flush_once(self) -> None:
        await self._check_epoch()
        if not self._topic_ready:
            await self.ensure_topic()
            self._topic_ready = True
        await self._flush_tables()
        async with self.new_uow() as uow:
            newest = await repository.latest_number(uow.session)
        if newest is None:
            return
        start = newest if self.published is None else self.published + 1
        for version in range(start, newest + 1):
            async with self.new_uow() as uow:
                row = await repository.get_version(uow.session, version)
            if row is None:  # versions are never deleted; a gap would be a bug, say so once
                log.error("org version %d is missing; skipping it", version)
                self.published = version
                continue
            producer = await self._get_producer()
            value, headers = encode_snapshot(row.version, row.document, row.changed_at)
            await producer.send_and_wait(self.topic, value, key=SNAPSHOT_KEY, headers=headers, partition=0)
            self.published = version
            log.info("published org directory version %d to %s", version, self.topic)

    async def _flush_tables(self) -> None:
        """Publish each holiday table loaded since the last publish (all of them the first time)."""
        if not self.holiday_topic:
            return
        async with self.new_uow() as uow:
            rows = await repository.all_holiday_tables(uow.session)
        published = dict(self.tables_published or {})
        for row in rows:
            if published.get(row.year) == row.loaded_at:
                continue
            loaded = LoadedTable(
                HolidayTable.parse({"year": row.year, "holidays": row.holidays, "workdays": row.workdays}), row.loaded_at, row.loaded_by
            )
            value, headers = encode_table(loaded)
            producer = await self._get_producer()
            await producer.send_and_wait(self.holiday_topic, value, key=table_key(row.year), headers=headers, partition=0)
            published[row.year] = row.loaded_at
            self.tables_published = published
            log.info("published holiday table %d to %s", row.year, self.holiday_topic)
        self.tables_published = published

    async def _get_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = new_producer(self.bootstrap_servers, "directory-snapshots")  # acks=all
            await producer.start()
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
