"""Kafka plumbing: topics, the producer factory, and the broker epoch.

The broker epoch tells a service that the broker it talks to is not the one it published
to before (the development broker keeps everything in memory, so a restart is a fresh,
empty broker with the same cluster id). The epoch is the value of the first record of the
one-partition topic ``platform-epoch``: whoever finds that topic empty writes a new UUID,
and the record at offset 0 wins. A service stores the epoch it last published under; when
the broker's epoch differs, it republishes the outbox rows it still retains.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)

EPOCH_TOPIC = "platform-epoch"


def dlq_topic(topic: str, service: str) -> str:
    return f"{topic}.dlq.{service}"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int = 1
    configs: tuple[tuple[str, str], ...] = ()


def epoch_topic_spec(replication_factor: int) -> TopicSpec:
    # The epoch record must never expire: if it did, every service would take the broker
    # for a fresh one and republish its whole outbox. Keep it forever, replicated.
    return TopicSpec(EPOCH_TOPIC, 1, replication_factor, (("retention.ms", "-1"), ("retention.bytes", "-1")))


async def ensure_topics(bootstrap_servers: str, specs: list[TopicSpec]) -> None:
    """Create the topics that do not exist yet (another replica may race us: fine)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return
        try:
            await admin.create_topics(
                [NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.configs)) for s in missing]
            )
        except TopicAlreadyExistsError:
            pass
        log.info("created topics %s", [s.name for s in missing])
    finally:
        await admin.close()


def new_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    # acks=all and no idempotence: the development broker cannot do InitProducerId, and
    # duplicates are dropped by the consumers' inbox anyway.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=15_000,
    )


async def read_epoch(bootstrap_servers: str) -> str | None:
    """The broker's epoch, or None when nobody has written one yet."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    try:
        # Inside the try: a start that fails (the broker gone) still closes the client, where
        # it was left open before ("Unclosed AIOKafkaConsumer", one per epoch check).
        await consumer.start()
        # Listing all topics does not auto-create one, unlike asking for it by name.
        if EPOCH_TOPIC not in await consumer.topics():
            return None
        tp = TopicPartition(EPOCH_TOPIC, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
        records = batch.get(tp, [])
        return records[0].value.decode() if records else None
    finally:
        await consumer.stop()


async def ensure_epoch(bootstrap_servers: str, specs: list[TopicSpec]) -> str:
    """The broker's epoch, creating topics and the epoch record on a fresh broker."""
    epoch = await read_epoch(bootstrap_servers)
    if epoch is not None:
        return epoch
    replication = max((s.replication_factor for s in specs), default=1)
    await ensure_topics(bootstrap_servers, [*specs, epoch_topic_spec(replication)])
    producer = new_producer(bootstrap_servers, "epoch-writer")
    await producer.start()
    try:
        await producer.send_and_wait(EPOCH_TOPIC, uuid.uuid4().hex.encode(), partition=0)
    finally:
        await producer.stop()
    for _ in range(20):  # the first record wins; read it back
        epoch = await read_epoch(bootstrap_servers)
        if epoch is not None:
            return epoch
        await asyncio.sleep(0.1)
    raise RuntimeError("could not read back the broker epoch")
