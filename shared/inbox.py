"""The inbox is bounded: an applied event's id is kept only as long as a duplicate can arrive.

Duplicates reach a consumer when a relay sends a batch again after a failed send (seconds
later), when a consumer re-reads what it applied but had not committed (a crash, a
rebalance: minutes), and when a fresh broker is refilled with every outbox row sent in the
last ``outbox_retention_days`` (``shared.relay``). The last is the longest, so the inbox
keeps ids for that plus a margin: ``inbox_retention_hours``, by default the outbox retention
+ 24 h, and never less than the outbox retention (refused at start, ``shared.settings``).

Every service prunes its own inbox the same way (started beside the relay by
``shared.service``): every ``inbox_prune_seconds``, ``DELETE`` the oldest expired ids a
batch at a time (``inbox_prune_batch`` rows per statement, each its own short transaction,
found by the ``processed_at`` index), until a batch comes back short. Short statements keep
locks and WAL bursts small, and a first run on a years-old inbox works through it without one
huge transaction. ``SKIP LOCKED``: replicas sharing the database prune side by side without
waiting on each other.

Why not per-partition positions with a window of recent ids instead: a refilled broker
gives the same events new offsets, so positions alone cannot tell them apart and the id
window would have to span the refill anyway — the same retention, plus a second mechanism.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import metrics
from shared.tasks import stop_task

log = logging.getLogger(__name__)

# The oldest expired ids, at most :batch of them, by the processed_at index; deleted by ctid
# (a TID scan, no second index lookup). Rows another replica is deleting are skipped.
_PRUNE_BATCH = text(
    """
    DELETE FROM processed_events WHERE ctid = ANY(ARRAY(
        SELECT ctid FROM processed_events
        WHERE processed_at < now() - make_interval(secs => :retention_seconds)
        ORDER BY processed_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ))
    """
)


async def prune_inbox(engine: AsyncEngine, retention: timedelta, *, batch: int = 5_000) -> int:
    """Delete every inbox id applied more than ``retention`` ago, ``batch`` rows per
    transaction; returns how many were deleted."""
    total = 0
    while True:
        async with engine.begin() as conn:
            deleted = (
                await conn.execute(_PRUNE_BATCH, {"retention_seconds": retention.total_seconds(), "batch": batch})
            ).rowcount
        total += deleted
        if deleted < batch:
            return total
        await asyncio.sleep(0)  # a long backlog: let the service's other work in between batches


class InboxPruner:
    """The periodic pruning of one service's inbox (every replica runs one)."""

    def __init__(
        self, engine: AsyncEngine, *, service: str, retention: timedelta, interval_seconds: float = 300, batch: int = 5_000
    ) -> None:
        self.engine = engine
        self.service = service
        self.retention = retention
        self.interval_seconds = interval_seconds
        self.batch = batch
        self.pruned = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-inbox-prune")

    async def stop(self) -> None:
        await stop_task(self._task)

    async def prune_once(self) -> int:
        deleted = await prune_inbox(self.engine, self.retention, batch=self.batch)
        self.pruned += deleted
        metrics.INBOX_PRUNED.labels(self.service).inc(deleted)
        if deleted:
            log.info("%s pruned %d inbox ids older than %s", self.service, deleted, self.retention)
        return deleted

    async def _run(self) -> None:
        while True:
            try:
                await self.prune_once()
            except Exception as exc:  # noqa: BLE001 - database trouble only delays the pruning: the ids wait
                log.warning("%s could not prune its inbox (next try in %.0fs): %r", self.service, self.interval_seconds, exc)
            await asyncio.sleep(self.interval_seconds)
