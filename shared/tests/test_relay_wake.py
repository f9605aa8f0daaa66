"""The outbox relay is woken by commits, not by its poll: with the poll set to a minute, an
event committed in either of two replicas (one leads the relay, the other stands by) is
published within a moment — the leader's own commits wake it in process, the other
replica's by PostgreSQL NOTIFY."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from shared.db import outbox
from shared.events import ProgressReported, ProgressReportedData, make_event, system_actor
from shared.testing import Infra, eventually, running, service_settings, unique
from shared.tests.probe import ProbeSettings
from shared.tests.probe import create_app as create_probe

POLL_SECONDS = 60  # far longer than any wait below: only a wake-up can publish in time
PROMPT_SECONDS = 3.0  # the epoch check on becoming leader and the relay's linger fit well inside


def progress(case_id: str) -> ProgressReported:
    return make_event(
        ProgressReported, case_id=case_id, producer="test", actor=system_actor("test"),
        payload=ProgressReportedData(order_no="JB-1", unit="zjj", note="ok", percent=1),
    )  # fmt: skip


async def seconds_until_sent(writer, reader) -> float:
    """Commit one event through ``writer``'s unit of work; seconds until its row is marked sent."""
    event = progress(unique("case"))
    started = time.monotonic()
    async with writer.runtime.uow() as uow:
        uow.emit(event)
        await uow.commit()
    while time.monotonic() - started < PROMPT_SECONDS * 3:
        async with reader.runtime.engine.connect() as conn:
            sent_at = (await conn.execute(select(outbox.c.sent_at).where(outbox.c.event_id == event.id))).scalar()
        if sent_at is not None:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    return float("inf")


async def test_a_commit_in_either_replica_is_published_at_once_without_the_poll(infra: Infra):
    topic, database = unique("lifecycle"), unique("probe")
    slow = {"outbox_poll_seconds": POLL_SECONDS, "broker_epoch_check_seconds": POLL_SECONDS}
    first = service_settings(ProbeSettings, infra, topic=topic, database=database, instance="a", **slow)
    second = service_settings(
        ProbeSettings, infra, topic=topic, database=database, instance="b", consumer_group=first.consumer_group, **slow
    )
    async with running(create_probe(first), first) as a, running(create_probe(second), second) as b:

        async def leader_and_follower():
            leaders = [s for s in (a, b) if s.runtime.relay.is_leader]
            return (leaders[0], b if leaders[0] is a else a) if len(leaders) == 1 else None

        leader, follower = await eventually(leader_and_follower, timeout=10, what="one relay leader")
        # Let the leader's first round (and its first epoch check) pass: what follows must
        # be woken, the leader is otherwise asleep for a minute now.
        await asyncio.sleep(1)
        assert await seconds_until_sent(leader, follower) < PROMPT_SECONDS, "the leader's own commit waited for the poll"
        assert await seconds_until_sent(follower, leader) < PROMPT_SECONDS, "a standby replica's commit waited for the poll"
        assert await seconds_until_sent(follower, leader) < PROMPT_SECONDS, "a second commit there waited too"
