"""The outbox relay's leadership outlives a database restart. Leading is holding an advisory
lock on a session of its own; a restart ends every session, and with it the lock. Both
replicas must notice: the leader that it leads no more, the standby that its session is gone
(before, the standby's dead session raised PendingRollbackError on every round for good, so
when the leader later stopped, nothing published that service's events again)."""

from __future__ import annotations

import asyncio

import asyncpg

from shared.relay import RELAY_LOCK_KEY
from shared.testing import Infra, RunningService, eventually, service_settings, unique
from shared.tests.probe import ProbeSettings
from shared.tests.probe import create_app as create_probe
from shared.tests.test_relay_wake import PROMPT_SECONDS, seconds_until_sent


async def end_every_session(postgres_url: str, database: str) -> int:
    """What a database restart does to the service's sessions: every one of them ends."""
    admin = await asyncpg.connect(postgres_url)
    try:
        return len(await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        ))  # fmt: skip
    finally:
        await admin.close()


async def lock_holders(postgres_url: str, database: str) -> int:
    """Sessions holding the relay's advisory lock in ``database``."""
    admin = await asyncpg.connect(postgres_url)
    try:
        return int(await admin.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = $1"
            " AND ((l.classid::bigint << 32) | l.objid::bigint) = $2",
            database, RELAY_LOCK_KEY,
        ))  # fmt: skip
    finally:
        await admin.close()


async def test_after_every_session_ends_one_relay_leads_again_and_the_standby_takes_over(infra: Infra):
    topic, database = unique("lifecycle"), unique("probe")
    first = service_settings(ProbeSettings, infra, topic=topic, database=database, instance="a")
    second = service_settings(
        ProbeSettings, infra, topic=topic, database=database, instance="b", consumer_group=first.consumer_group
    )
    a, b = RunningService(create_probe(first), first), RunningService(create_probe(second), second)
    await a.start()
    try:
        await b.start()
        try:

            async def leader_and_standby():
                leaders = [s for s in (a, b) if s.runtime.relay.is_leader]
                return (leaders[0], b if leaders[0] is a else a) if len(leaders) == 1 else None

            leader, standby = await eventually(leader_and_standby, timeout=10, what="one relay leader")
            assert await lock_holders(infra.postgres_url, database) == 1

            assert await end_every_session(infra.postgres_url, database) >= 2  # both relays' lock sessions at least
            # The lock is taken again by a live session, and one replica only believes it leads.
            await eventually(
                lambda: lock_holders(infra.postgres_url, database), timeout=15, what="the relay lock held again"
            )
            await eventually(leader_and_standby, timeout=15, what="one relay leader after the restart")

            # The leader goes away for good: the standby must lead and publish now.
            leader, standby = await eventually(leader_and_standby, timeout=1, what="one relay leader")
            await leader.stop()

            async def standby_leads() -> bool:
                return standby.runtime.relay.is_leader

            await eventually(standby_leads, timeout=15, what="the standby leading")
            await asyncio.sleep(0.5)  # its first round (the epoch check) passes
            assert await seconds_until_sent(standby, standby) < PROMPT_SECONDS * 2, "the standby never published"
        finally:
            await b.stop()
    finally:
        await a.stop()
