"""Faults under a steady load: crash every service in turn, replace the broker with an empty
one, crash PostgreSQL, lose one of two replicas — then account for every appeal like a Jepsen
checker (per service: effects lost, applied twice, applied before their cause, left held,
dead-lettered) and print how long each service took to catch up after each fault."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import time

import pytest
from aiokafka import AIOKafkaProducer

from shared.cloudevents import to_message
from shared.events import EVENT_TYPES
from shared.testing import Infra, TopicReader, eventually
from tests.e2e.checker import check
from tests.e2e.harness import SERVICE_NAMES, Platform, running_platform
from tests.e2e.load import SteadyLoad
from tests.e2e.recovery import Monitor
from tests.e2e.test_checker import received

pytestmark = pytest.mark.slow

CASE_TYPES = frozenset(t for t, cls in EVENT_TYPES.items() if cls.case_scoped)
PARTITIONS = 4  # shared.testing.service_env
# A generous bound on any service's recovery from one fault (a restart of intake trains its
# routing model: 30 s on a loaded machine; a crashed replica's partitions
# move after ~1.5 sessions of 3 s here; a fresh broker means every service reads it all again).
RECOVERY_BOUND_SECONDS = 180


async def applied(platform: Platform) -> dict[str, dict[str, int]]:
    """What each service says it applied: distinct events per case."""
    out = {}
    for service in SERVICE_NAMES:
        if service == "intake":  # intake's projection is the citizen's timeline
            rows = await platform.query(service, "SELECT case_id, count(*) AS n FROM timeline GROUP BY case_id")
        else:
            rows = await platform.query(service, "SELECT case_id, events_applied AS n FROM case_status")
        out[service] = {r["case_id"]: r["n"] for r in rows}
    return out


async def plumbing(platform: Platform, table: str) -> dict[str, dict]:
    """Per service: its inbox (event id → the applying transaction's time) or a row count."""
    out: dict[str, dict] = {}
    for service in SERVICE_NAMES:
        if table == "processed_events":
            rows = await platform.query(service, "SELECT event_id::text AS id, processed_at FROM processed_events")
            out[service] = {r["id"]: r["processed_at"] for r in rows}
        else:
            out[service] = {"n": (await platform.query(service, f"SELECT count(*) AS n FROM {table}"))[0]["n"]}
    return out


def declared_requires() -> dict[str, dict[str, frozenset[str]]]:
    """Each service's declared causes (shared.holding), as its app is built."""
    return {s: dict(importlib.import_module(f"{s}.app").create_app().state.spec.requires or {}) for s in SERVICE_NAMES}


async def crash_postgres(infra: Infra) -> None:
    """kill -9 of the postmaster, then start it again (crash recovery) once its orphaned
    backends have gone (until then the old shared memory blocks a start)."""
    postgres = infra.postgres
    pid = postgres.pid
    os.kill(pid, signal.SIGKILL)
    # Nobody may reap the dead postmaster here (a container's init often does not): as a
    # zombie it still "exists" for pg_ctl and for the new postmaster's lock-file check, which
    # would take it for a running server. Once it is dead its lock file goes, as a reaper's
    # system would let it.
    await eventually(lambda: _dead(pid), timeout=30, what="the postmaster to die")
    postgres.pid = None
    (postgres.data_dir / "postmaster.pid").unlink(missing_ok=True)
    await asyncio.sleep(1)
    for _ in range(30):
        try:
            await asyncio.to_thread(infra.postgres.start)
            return
        except RuntimeError:
            await asyncio.sleep(1)
    raise AssertionError("PostgreSQL did not come back after kill -9")


async def _dead(pid: int) -> bool:
    """Gone, or a zombie (dead, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_nothing_lost_applied_twice_or_before_its_cause_through_crashes_of_every_part(infra: Infra, tmp_path):
    if infra.broker is None or infra.postgres is None:
        pytest.skip("needs the embedded broker and PostgreSQL to crash them")
    async with running_platform(infra, tmp_path, replicas={"dispatch": 2, "sla": 2}) as platform:
        async with Monitor(platform, SERVICE_NAMES, PARTITIONS) as monitor, SteadyLoad(platform.url("intake"), rate=8) as load:

            async def fault(name: str, action) -> None:
                at = time.monotonic()
                await action()
                await monitor.settled()
                monitor.record(name, at, load.acked_at)

            try:
                await asyncio.sleep(3)
                await monitor.settled()
                for service in SERVICE_NAMES:

                    async def crash(service=service):
                        await platform.kill(service)
                        await asyncio.sleep(1)
                        await platform.restart(service)

                    await fault(f"kill -9 {service}", crash)

                async def lose_broker():
                    infra.broker.kill()  # in memory: the topic and every committed offset are gone
                    await asyncio.sleep(1)
                    await asyncio.to_thread(infra.broker.start)

                await fault("broker lost (a fresh, empty one)", lose_broker)
                await fault("kill -9 PostgreSQL", lambda: crash_postgres(infra))

                async def lose_replicas():
                    await platform.kill("dispatch#2")  # its partitions move to the survivor
                    await platform.kill("sla#2")

                await fault("kill -9 dispatch#2 and sla#2", lose_replicas)
            finally:
                print("\n" + monitor.table())  # what was measured, also when a fault did not recover
            await asyncio.sleep(2)
        assert not load.pending, f"{len(load.pending)} appeals never acknowledged"
        print(f"\nload: {load.sent} sent, {load.retries} retries while services were down; answers {dict(load.statuses)}")
        # While PostgreSQL or intake was down, intake said so (503) or was unreachable: never a 500.
        assert not [code for code in load.statuses if code >= 500 and code != 503], load.statuses
        requires = declared_requires()
        last = {}

        async def verdict():
            async with TopicReader(infra.bootstrap_servers, platform.topic) as reader:
                events = await eventually(lambda: reader.events(), what="the topic")
                more = await reader.events()
                while len(more) > len(events):
                    events = more
                    more = await reader.events()
            held = await plumbing(platform, "held_events")
            dead = await plumbing(platform, "dead_letters")
            result = check(
                sent=load.sent, acknowledged=load.acknowledged, events=events,
                applied=await applied(platform), handled_by=dict.fromkeys(SERVICE_NAMES, CASE_TYPES),
                applied_at=await plumbing(platform, "processed_events"), requires=requires,
                still_held={s: v["n"] for s, v in held.items()}, dead_letters={s: v["n"] for s, v in dead.items()},
            )  # fmt: skip
            last["verdict"] = result
            return result if result.ok else None

        try:
            result = await eventually(verdict, timeout=180, interval=2, what="every service to catch up exactly")
        finally:
            if "verdict" in last:
                print(last["verdict"].table())
        assert result.acknowledged == load.sent
        assert result.received_on_topic == result.acknowledged
        for f in monitor.faults:
            for service, seconds in f.recovered.items():
                assert seconds is not None and seconds < RECOVERY_BOUND_SECONDS, f"{service} after {f.name}: {seconds}"

        # A poison event is parked in every service's dead-letter table, and the rest flow on.
        # From a producer no service is: a service skips its own events unread (intake does).
        poison = received("poison-case").model_copy(update={"producer": "chaos-monkey"})
        message = to_message(poison)
        await publish_raw(infra, platform.topic, message.key, b'{"not": "an event"}', message.headers)
        for service in SERVICE_NAMES:
            await eventually(
                lambda s=service: _dead_letters(platform, s), timeout=60, what=f"{service} to park the poison event"
            )


async def publish_raw(infra: Infra, topic: str, key: bytes, value: bytes, headers) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


async def _dead_letters(platform: Platform, service: str) -> int:
    rows = await platform.query(service, "SELECT count(*) AS n FROM dead_letters")
    return rows[0]["n"]
