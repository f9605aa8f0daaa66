"""Faults under a steady load: crash every service in turn, replace the broker with an empty
one, lose one of two replicas — then account for every appeal like a Jepsen checker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from shared.cloudevents import to_message
from shared.events import EVENT_TYPES
from shared.testing import Infra, TopicReader, eventually
from tests.e2e.checker import check
from tests.e2e.test_checker import received
from tests.e2e.harness import SERVICE_NAMES, Platform, running_platform
from tests.e2e.load import SteadyLoad

pytestmark = pytest.mark.slow

CASE_TYPES = frozenset(t for t, cls in EVENT_TYPES.items() if cls.case_scoped)


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


async def test_nothing_lost_or_applied_twice_through_crashes_a_fresh_broker_and_a_lost_replica(
    infra: Infra, tmp_path
):
    if infra.broker is None:
        pytest.skip("needs the embedded broker to replace it")
    async with running_platform(infra, tmp_path, replicas={"dispatch": 2, "sla": 2}) as platform:
        async with SteadyLoad(platform.url("intake"), rate=8) as load:
            await asyncio.sleep(3)
            for service in SERVICE_NAMES:
                await platform.kill(service)
                await asyncio.sleep(1)
                await platform.restart(service)
                await asyncio.sleep(1)
            infra.broker.kill()  # in memory: the topic and every committed offset are gone
            await asyncio.sleep(1)
            infra.broker.start()
            await asyncio.sleep(4)
            await platform.kill("dispatch#2")  # its partitions move to the survivor
            await platform.kill("sla#2")
            await asyncio.sleep(4)
        assert not load.pending, f"{len(load.pending)} appeals never acknowledged"
        print(f"\nload: {load.sent} sent, {load.retries} retries while services were down")

        async def verdict():
            async with TopicReader(infra.bootstrap_servers, platform.topic) as reader:
                events = await eventually(lambda: reader.events(), what="the topic")
                more = await reader.events()
                while len(more) > len(events):
                    events = more
                    more = await reader.events()
            result = check(
                sent=load.sent, acknowledged=load.acknowledged, events=events,
                applied=await applied(platform), handled_by=dict.fromkeys(SERVICE_NAMES, CASE_TYPES),
            )
            return result if result.ok else None

        result = await eventually(verdict, timeout=180, interval=2, what="every service to catch up exactly")
        print(result.table())
        assert result.acknowledged == load.sent
        assert result.received_on_topic == result.acknowledged

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
