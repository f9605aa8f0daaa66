"""Test helpers: a case's events from several producers, applied in every order Kafka may
show them (each producer's own order kept, nothing kept between producers), through a
service's real consumer code paths (issue #22, item 1; ``shared.holding``).

Used by each service's ``test_cause_order.py``: the end state after any such interleaving
must equal the end state after the events in the order they happened.
"""

from __future__ import annotations

import itertools

from aiokafka import ConsumerRecord, TopicPartition

from shared.cloudevents import to_message
from shared.consumer import EventConsumer
from shared.events import EventBase

Streams = dict[str, list[EventBase]]


def in_order(streams: Streams) -> list[EventBase]:
    """The events as they happened (by ``occurred_at``)."""
    return sorted(itertools.chain(*streams.values()), key=lambda e: e.occurred_at)


def interleave(streams: Streams, labels: tuple[str, ...]) -> list[EventBase]:
    """The events in the order ``labels`` names their producers: each producer's own order kept."""
    queues = {name: list(events) for name, events in streams.items()}
    return [queues[label].pop(0) for label in labels]


def every_interleaving(streams: Streams) -> list[tuple[str, ...]]:
    labels = [name for name, events in streams.items() for _ in events]
    return sorted(set(itertools.permutations(labels)))


def labels_of(streams: Streams) -> list[str]:
    """One label per event, for drawing a permutation (hypothesis)."""
    return [name for name, events in streams.items() for _ in events]


def cut(events: list[EventBase], cuts: list[bool]) -> list[list[EventBase]]:
    """``events`` split into fetches: a new batch after each event whose cut is True."""
    batches, batch = [], [events[0]]
    for event, new in zip(events[1:], cuts, strict=True):
        if new:
            batches.append(batch)
            batch = []
        batch.append(event)
    batches.append(batch)
    return batches


def records(events: list[EventBase], topic: str, start: int) -> list[ConsumerRecord]:
    out = []
    for offset, event in enumerate(events, start):
        message = to_message(event)
        out.append(ConsumerRecord(
            topic=topic, partition=0, offset=offset, timestamp=-1, timestamp_type=0, key=message.key,
            value=message.value, checksum=None, serialized_key_size=-1, serialized_value_size=-1,
            headers=tuple(message.headers),
        ))  # fmt: skip
    return out


async def apply(consumer: EventConsumer, batches: list[list[EventBase]], *, isolate: bool) -> None:
    """Each batch as the consumer applies a fetched partition batch (the batch handler, or event
    by event under savepoints as a replayed batch is), one transaction each."""
    tp = TopicPartition(consumer.topic, 0)
    offset = 0
    for batch in batches:
        await consumer._apply(tp, records(batch, consumer.topic, offset), isolate=isolate)
        offset += len(batch)


async def apply_drawn(consumer: EventConsumer, streams: Streams, draw) -> None:  # noqa: ANN001 - hypothesis' data.draw
    """One random interleaving of ``streams``, cut into random fetches, applied by the batch
    handler or event by event (drawn too), then delivered again whole (the broker's redelivery):
    each service's property test draws its orders the same way."""
    from hypothesis import strategies as st

    events = interleave(streams, tuple(draw(st.permutations(labels_of(streams)))))
    batches = cut(events, draw(st.lists(st.booleans(), min_size=len(events) - 1, max_size=len(events) - 1)))
    isolate = draw(st.booleans())
    await apply(consumer, batches, isolate=isolate)
    await apply(consumer, batches, isolate=isolate)


async def plumbing_of(session, case_id: str, *status_columns) -> dict:  # noqa: ANN001 - an AsyncSession; Columns
    """What the consumer's plumbing keeps of a case, for an end-state comparison: its
    ``case_status`` (status, events applied, last type, and any ``status_columns``) and how
    many of its events are held."""
    from sqlalchemy import func, select

    from shared.db import case_status, held_events

    status = (await session.execute(
        select(case_status.c.status, case_status.c.events_applied, case_status.c.last_event_type, *status_columns)
        .where(case_status.c.case_id == case_id)
    )).first()  # fmt: skip
    held = (await session.execute(select(func.count()).select_from(held_events).where(held_events.c.case_id == case_id))).scalar()
    return {"status": list(status) if status else None, "held": held}
