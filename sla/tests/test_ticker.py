"""The ticker: yellow → red → urging → escalation each once with two replicas on one
database and consumer group; and a breach due while the service was down fires on restart."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shared.actors import actor_headers
from shared.testing import AUDITOR, Infra, TopicReader, eventually, publish, running, unique
from shared.ports import free_port
from sla.app import create_app
from sla.tests.conftest import sla_settings
from sla.tests.events import bj, dispatched, filed, signed

ADMIN = actor_headers("ops-1", "ops")
SLA_EVENTS = ("sla.warning", "sla.breached", "sla.urged", "sla.escalated")


def threshold(event) -> str:
    p = event.payload
    if event.type == "sla.warning":
        return p.threshold
    if event.type == "sla.breached":
        return "red"
    if event.type == "sla.urged":
        return f"urge-{p.sequence}"
    return f"escalate:{p.reason}"


@pytest.mark.slow
async def test_each_threshold_fires_once_with_two_replicas(infra: Infra):
    settings = sla_settings(infra, topic=unique("lifecycle"), database=unique("sla"))
    twin = settings.model_copy(update={"port": free_port()})
    # Orders dispatched on Mon 23 Nov 2026 16:00: resolve due Mon 30 Nov 16:00 (5 working days).
    cases = [unique("case") for _ in range(8)]
    async with running(create_app(settings), settings) as one:
        # Pin the shared now before any clock exists and before the second replica starts: a
        # ticker that ran on the real clock once the dates below are past would fire every
        # threshold at once (urge-4 and beyond) instead of one step at a time.
        pinned = await one.client.post("/api/v1/admin/time", json={"now": bj(2026, 11, 23, 16, 30).isoformat()}, headers=ADMIN)
        assert pinned.status_code == 200
        offset = pinned.json()["offset_seconds"]
        async with running(create_app(twin), twin) as two:
            # The second replica's ticker reads the offset from the database before its first tick.
            seen = (await two.client.get("/api/v1/admin/time", headers=ADMIN)).json()
            assert seen["offset_seconds"] == offset, seen
            await _fire_each_threshold_once(infra, settings, one, two, cases)


async def _fire_each_threshold_once(infra: Infra, settings, one, two, cases: list[str]) -> None:
    """Dispatch and sign the cases, then move the shared now step by step, alternating replicas."""
    await publish(infra.bootstrap_servers, settings.kafka_topic, *[e for c in cases for e in (*filed(c, bj(2026, 11, 23, 15)), dispatched(c, bj(2026, 11, 23, 16)), signed(c, bj(2026, 11, 23, 16, 20)))])

    order_clocks = {"sign", "resolve", "return_window", "first_contact"}  # besides intake's accept clock

    async def all_clocks():
        names = [{k["name"] for k in (await one.client.get(f"/api/v1/cases/{c}/clocks", headers=AUDITOR)).json().get("clocks", [])}
                 for c in cases]  # fmt: skip
        return all(order_clocks <= n for n in names)

    await eventually(all_clocks, what="clocks of every case")
    async with TopicReader(infra.bootstrap_servers, settings.kafka_topic) as reader:

        async def resolve_signals(name):
            events = [e for e in await reader.events(types=SLA_EVENTS) if ":resolve:" in (e.payload.clock_id or "")]
            hits = [e for e in events if threshold(e) == name]
            return hits if len(hits) >= len(cases) else None

        # Each step moves the shared now on one replica or the other; both tickers claim.
        steps = [
            (one, bj(2026, 11, 27, 16, 30), "yellow"),  # 1 working day before the due time
            (two, bj(2026, 11, 30, 16, 30), "red"),
            (one, bj(2026, 12, 1, 16, 30), "urge-1"),  # 催办 each working day overdue
            (two, bj(2026, 12, 3, 16, 30), "escalate:overdue"),  # 督办 at due + 3 working days
        ]
        for service, when, name in steps:
            moved = await service.client.post("/api/v1/admin/time", json={"now": when.isoformat()}, headers=ADMIN)
            assert moved.status_code == 200
            await eventually(lambda: resolve_signals(name), timeout=30, what=f"{name} on every resolve clock")
        # Give both tickers a few more rounds in which a double firing would show.
        await asyncio.sleep(1.5)
        events = await reader.events(types=SLA_EVENTS)

    per_clock = Counter((e.payload.clock_id, threshold(e)) for e in events)
    assert per_clock and max(per_clock.values()) == 1, [k for k, n in per_clock.items() if n > 1]
    for case in cases:
        fired = sorted(t for (clock, t) in per_clock if clock.startswith(f"{case}:resolve:"))
        assert fired == sorted(["yellow", "red", "urge-1", "urge-2", "urge-3", "escalate:overdue"])
    body = (await two.client.get(f"/api/v1/cases/{cases[0]}/clocks", headers=AUDITOR)).json()
    resolve = next(c for c in body["clocks"] if c["name"] == "resolve")
    assert resolve["state"] == "breached" and resolve["overdue"] and resolve["remaining_text"].startswith("超期 3 个工作日")
    board = (await one.client.get("/api/v1/board", headers=AUDITOR)).json()
    # Per case: resolve and first contact are past due; signing ended the sign clock and the
    # return window (a signed order can no longer be returned).
    assert board["units"] == [{"unit": "LB-XC-ZJJ", "yellow": 0, "red": 2 * len(cases)}]


@pytest.mark.slow
async def test_a_breach_due_while_the_service_was_down_fires_after_restart(infra: Infra):
    settings = sla_settings(infra, topic=unique("lifecycle"), database=unique("sla"))
    case = unique("case")
    dispatched_at = datetime.now(UTC)
    async with running(create_app(settings), settings) as sla:
        await publish(infra.bootstrap_servers, settings.kafka_topic, *filed(case, dispatched_at), dispatched(case, dispatched_at))

        async def sign_clock():
            body = (await sla.client.get(f"/api/v1/cases/{case}/clocks", headers=AUDITOR)).json()
            return next((c for c in body.get("clocks", []) if c["name"] == "sign"), None)

        clock = await eventually(sign_clock, what="the sign clock")
        assert clock["state"] == "running" and clock["signals_fired"] == []

    # While it is down, two hours pass (the shared offset in its database moves on).
    engine = create_async_engine(settings.async_database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO time_offset (id, offset_seconds) VALUES (1, 7200) ON CONFLICT (id) DO UPDATE SET offset_seconds = 7200"))
    finally:
        await engine.dispose()

    async with running(create_app(settings), settings) as sla, TopicReader(infra.bootstrap_servers, settings.kafka_topic) as reader:
        breaches = await eventually(lambda: reader.events(case_id=case, types="sla.breached"), what="the breach after restart")
        assert [b.payload.clock_id for b in breaches] == [clock["clock_id"]]
        assert breaches[0].payload.due_at == dispatched_at + timedelta(hours=1)
        after = await sign_clock()
        assert after["state"] == "breached" and after["signals_fired"] == ["red"]
