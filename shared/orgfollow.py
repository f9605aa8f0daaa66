"""A service's own copy of the organisation directory, kept current from the topic.

The directory service (``services/directory``) publishes every version of the org
document on the one-partition topic ``org-directory`` (key ``b"org"``, header ``ce_type``
``org.snapshot``, value ``{"version": n, "document": {...}, "changed_at": "…"}``) and
republishes the current one whenever it starts. ``OrgFollower`` reads that topic from the
beginning — no consumer group, so every process of every service sees every snapshot —
and keeps the newest version that parses in ``.current``.

Services read ``follower.current`` on their hot path: an attribute read, no call to the
directory. Until a snapshot arrives ``.current`` is the ``initial`` directory (the seed
file), so a service starts and works while the directory or the broker is down. A
snapshot that fails ``parse_org`` is logged and skipped; the previous one stays.

``encode_snapshot`` is the message format (the directory's publisher uses it) and
``publish_snapshot`` puts one on the topic as the directory would, for tests and tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared.tasks import stop_task
from shared.orgdata import OrgDirectory, parse_org

log = logging.getLogger(__name__)

SNAPSHOT_TYPE = "org.snapshot"
SNAPSHOT_KEY = b"org"


def encode_snapshot(
    version: int, document: dict[str, Any], changed_at: datetime, *, source: str = "directory"
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """(value, headers) of one snapshot message: CloudEvents binary mode like the lifecycle events."""
    value = orjson.dumps({"version": version, "document": document, "changed_at": changed_at.isoformat()})
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", uuid.uuid4().hex.encode()),
        ("ce_type", SNAPSHOT_TYPE.encode()),
        ("ce_source", source.encode()),
        ("ce_subject", f"org@{version}".encode()),
        ("ce_time", changed_at.isoformat().encode()),
        ("content-type", b"application/json"),
    ]
    return value, headers


async def publish_snapshot(
    bootstrap_servers: str, topic: str, version: int, document: dict[str, Any], changed_at: datetime | None = None
) -> None:
    """Put one snapshot on the topic as the directory would (for tests and tools; the topic must exist)."""
    value, headers = encode_snapshot(version, document, changed_at or datetime.now(UTC), source="tool")
    await publish_record(bootstrap_servers, topic, value, key=SNAPSHOT_KEY, headers=headers)


async def publish_record(bootstrap_servers: str, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]) -> None:
    """Put one record on a one-partition reference-data topic (for tests and tools; the topic must exist)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers, partition=0)
    finally:
        await producer.stop()


def _header(headers: Any, name: str) -> bytes | None:
    for key, value in headers or ():
        if key == name:
            return value
    return None


def decode_snapshot(value: bytes | None, headers: Any = ()) -> tuple[int, OrgDirectory] | None:
    """(version, directory) from one message; None when it is not a snapshot at all.

    Raises ``ValueError`` (``OrgDataError`` included) when it claims to be a snapshot and
    is unusable: not JSON, no integer version, or a document that fails ``parse_org``.
    """
    ce_type = _header(headers, "ce_type")
    if ce_type is not None and ce_type != SNAPSHOT_TYPE.encode():
        return None
    if value is None:
        raise ValueError("empty snapshot message")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"snapshot is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("snapshot is not a JSON object")
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"snapshot has no positive integer version (got {version!r})")
    org = parse_org(body.get("document"), f"org snapshot version {version}")
    return version, org


class TopicFollower:
    """Reads a one-partition reference-data topic from the beginning, with no consumer group
    (every process of every service sees every record), and hands each record to ``apply``;
    reconnects after ``retry_seconds`` when the broker is away. ``OrgFollower`` and
    ``shared.holidays.HolidayFollower`` are the two kinds."""

    name = "follower"

    def __init__(self, bootstrap_servers: str, topic: str, *, retry_seconds: float = 1.0, fetch_wait_ms: int = 5_000) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.retry_seconds = retry_seconds
        # How long the broker may hold a fetch with nothing new. Kafka answers a waiting fetch
        # as soon as a version is published; the development broker (Tansu) only when the
        # wait is over — so there a change takes up to this long to arrive. The directory
        # changes a few times a day; a fetch every half second (aiokafka's default) in every
        # service was a fifth of the idle platform's CPU, broker included.
        self.fetch_wait_ms = fetch_wait_ms
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._changed = asyncio.Event()  # set, and replaced, each time ``apply`` takes a record

    def _changed_now(self) -> None:
        """Wake whoever waits in ``_wait_until``."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_until(self, reached: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``reached()`` holds after a change, at most ``timeout`` seconds; False if it never did."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not reached():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        return True

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"{self.name}:{self.topic}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    def apply(self, value: bytes | None, headers: Any = (), *, where: str = "") -> bool:
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s on %s: %r; retrying in %.1fs", self.name, self.topic, exc, self.retry_seconds)
            finally:
                consumer, self._consumer = self._consumer, None
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        await consumer.stop()
            await asyncio.sleep(self.retry_seconds)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            # A restarted (empty) broker puts our position beyond its end: start over.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_wait_ms,
            request_timeout_ms=max(10_000, self.fetch_wait_ms + 5_000),
        )
        self._consumer = consumer
        await consumer.start()
        # Listing all topics does not auto-create one, unlike asking for it by name; until
        # the directory has created its topic, keep the seed and look again later.
        while self.topic not in await consumer.topics():
            await asyncio.sleep(self.retry_seconds)
        partitions = consumer.partitions_for_topic(self.topic) or {0}
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=self.fetch_wait_ms, max_records=100)
            for tp, records in batch.items():
                for record in records:
                    self.apply(record.value, record.headers, where=f"at {tp.topic}[{tp.partition}]@{record.offset}")


class OrgFollower(TopicFollower):
    """Follows ``topic`` and keeps the newest org snapshot in ``.current``.

    ``on_change`` (optional) is called with each new directory, in the follower's task, so
    a service can rebuild what it derives from the directory (indexes, caches).
    """

    name = "org-follower"

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        initial: OrgDirectory,
        *,
        on_change: Callable[[OrgDirectory], None] | None = None,
        retry_seconds: float = 1.0,
        fetch_wait_ms: int = 5_000,
    ) -> None:
        super().__init__(bootstrap_servers, topic, retry_seconds=retry_seconds, fetch_wait_ms=fetch_wait_ms)
        self.current: OrgDirectory = initial
        self.on_change = on_change
        self.skipped = 0  # snapshots refused (bad JSON, bad version, inconsistent document)
        self._version = 0  # 0: nothing from the topic yet, ``current`` is the seed

    @property
    def version(self) -> int:
        """The version of ``current`` as the directory numbered it; 0 while it is the seed."""
        return self._version

    async def wait_for_version(self, version: int, timeout: float = 10) -> OrgDirectory:
        """Wait until a snapshot of at least ``version`` is current (for tests); TimeoutError else."""
        if not await self._wait_until(lambda: self._version >= version, timeout):
            raise TimeoutError(f"org snapshot version {version} not seen in {timeout}s (have {self._version})")
        return self.current

    # ------------------------------------------------------------------ internals

    def apply(self, value: bytes | None, headers: Any = (), *, where: str = "") -> bool:
        """Take one message; True when it became ``current``. Pure of I/O, so tests may feed it."""
        try:
            decoded = decode_snapshot(value, headers)
        except ValueError as exc:
            self.skipped += 1
            log.error("skipping an unusable org snapshot %s: %s", where, exc)
            return False
        if decoded is None:
            return False
        version, org = decoded
        if version <= self._version:
            return False  # a republished or older version: we already have it or better
        self.current, self._version = org, version
        log.info("org directory version %d from %s", version, self.topic)
        if self.on_change is not None:
            try:
                self.on_change(org)
            except Exception:
                log.exception("on_change failed for org directory version %d", version)
        self._changed_now()
        return True
