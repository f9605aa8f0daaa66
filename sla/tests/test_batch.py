"""SLA's handler (``apply_batch``) over a whole story, however the consumer cuts it into batches.

Against a running sla (real PostgreSQL): two cases get the same story, one in three
batches, the other in batches of one, each in its own transaction (how the consumer applies
a failed batch again). Their clocks, case rows and case_status must be the same, column by
column, and show every kind of clock change.
"""

from datetime import timedelta

import pytest
from sqlalchemy import select

from shared.db import case_status
from shared.testing import Infra, running, unique
from sla.app import create_app
from sla.handlers import apply_batch
from sla import repository as repo
from sla.service import tick
from sla.models import clocks, signals, sla_cases
from sla.tests.conftest import sla_settings
from sla.tests.events import (
    UNIT, accepted, bj, closed, county_called, dispatched, extension_approved, progress, received, reopened, resolved, resumed,
    signed, suspended, triaged,
)  # fmt: skip

CO = "LB-XC-SLJ"


def story(case: str) -> list:
    """Every kind of clock change, some twice (a redelivered dispatch), three redo rounds."""
    events = [
        received(case, bj(2026, 9, 28, 9)), accepted(case, bj(2026, 9, 28, 10)), triaged(case, bj(2026, 9, 28, 11)),
        dispatched(case, bj(2026, 9, 29, 16), role="lead"), dispatched(case, bj(2026, 9, 29, 16), unit=CO, role="co"),
        county_called(case, bj(2026, 9, 29, 17), [UNIT, CO]), signed(case, bj(2026, 9, 29, 16, 30)),
        progress(case, bj(2026, 9, 29, 18), first_contact=True), suspended(case, bj(2026, 9, 30, 9)),
        resumed(case, bj(2026, 10, 9, 9)), extension_approved(case, bj(2026, 10, 20, 9), 2),
        resolved(case, bj(2026, 10, 21, 9)), resolved(case, bj(2026, 10, 21, 10), unit=CO), closed(case, bj(2026, 10, 22, 9)),
    ]  # fmt: skip
    for n in (1, 2, 3):
        events += [reopened(case, bj(2026, 10, 22 + n, 9), n), resolved(case, bj(2026, 10, 22 + n, 15)), closed(case, bj(2026, 10, 22 + n, 16))]
    events.insert(5, events[3])  # the same dispatch again: the clocks it started are not started twice
    return events


@pytest.fixture(scope="module")
async def sla(infra: Infra):
    settings = sla_settings(infra, topic=unique("lifecycle"), database=unique("sla"), ticker_enabled=False)
    async with running(create_app(settings), settings) as service:
        yield service


# Ids and times of writing differ; events_applied too: the redo-limit escalation comes back
# from the topic into case_status whenever the consumer gets to it.
SKIP = ("updated_at", "id", "event_id", "case_id", "events_applied")


async def rows_of(service, case: str) -> dict:
    async with service.runtime.engine.connect() as conn:
        got = {}
        for name, table, order in (
            ("clocks", clocks, clocks.c.clock_id), ("signals", signals, signals.c.clock_id),
            ("case", sla_cases, sla_cases.c.case_id), ("status", case_status, case_status.c.case_id),
        ):  # fmt: skip
            rows = (await conn.execute(select(table).where(table.c.case_id == case).order_by(order))).mappings().all()
            got[name] = [
                {k: (v.replace(case, "<case>") if isinstance(v, str) else v) for k, v in r.items() if k not in SKIP}
                for r in rows
            ]
    return got


async def test_a_story_gives_the_same_rows_in_three_batches_as_in_batches_of_one(sla):
    batched, single = unique("case"), unique("case")
    events = story(batched)
    # Three batches: clocks started and changed in one batch, and clocks of an earlier batch changed.
    for part in (events[:6], events[6:14], events[14:]):
        async with sla.runtime.uow() as uow:
            await apply_batch(uow, part)
            await uow.commit()
    for event in story(single):
        async with sla.runtime.uow() as uow:
            await apply_batch(uow, [event])
            await uow.commit()
    singly = await rows_of(sla, single)
    assert await rows_of(sla, batched) == singly
    # The story reaches every kind of change, so the comparison covers them.
    states = {(c["name"], c["state"]) for c in singly["clocks"]}
    assert {("accept", "stopped"), ("response", "stopped"), ("callback", "stopped"), ("callback", "running")} <= states
    assert {c["round"] for c in singly["clocks"] if c["name"] == "resolve"} == {0, 1, 2, 3}
    assert any(c["paused_total"] for c in singly["clocks"])
    assert [s["signal"] for s in singly["signals"]] == ["redo_limit"]
    assert singly["case"][0]["closed"] and singly["case"][0]["redo_round"] == 3
    assert singly["status"][0]["last_event_type"] == "case.closed"


async def test_a_batch_keeps_what_the_ticker_fired_and_an_extension_resets_it(sla):
    """The batch path writes clocks it read back (thresholds fired, warnings, pause totals):
    a stopped clock keeps its fired thresholds; an extension starts a new generation."""
    case = unique("case")
    start = bj(2026, 9, 29, 16)
    async with sla.runtime.uow() as uow:
        await apply_batch(uow, [received(case, start), accepted(case, start), triaged(case, start), dispatched(case, start)])
        await uow.commit()
    # The ticker an hour before the resolve clock is due: the resolve clock's yellow card, the
    # sign clock's red card (its hour passed long ago).
    due = {c["name"]: c["due_at"] for c in (await rows_of(sla, case))["clocks"]}["resolve"]
    now = due - timedelta(hours=1)
    async with sla.runtime.uow() as uow:
        await tick(uow, now, 10_000)
    before = {c["name"]: c for c in (await rows_of(sla, case))["clocks"]}
    assert "red" in before["sign"]["fired"] and before["sign"]["state"] == "breached"
    assert "yellow" in before["resolve"]["fired"] and before["resolve"]["generation"] == 0

    async with sla.runtime.uow() as uow:
        await apply_batch(uow, [signed(case, now), extension_approved(case, now, 5)])
        await uow.commit()
    after = {c["name"]: c for c in (await rows_of(sla, case))["clocks"]}
    assert after["sign"]["fired"] == before["sign"]["fired"]
    assert after["sign"]["state"] == "stopped" and after["sign"]["next_signal_at"] is None
    assert after["resolve"]["fired"] == [] and after["resolve"]["generation"] == 1
    assert after["resolve"]["due_at"] > before["resolve"]["due_at"] and after["resolve"]["next_signal_at"] is not None
    assert after["first_contact"] == before["first_contact"]  # not touched by these events


async def test_the_driver_statements_belong_to_the_unit_of_work(sla):
    """Rows written on the asyncpg connection go with the session's transaction: rolled back
    with it, even when they are its first statement."""
    case = unique("case")
    row = {"case_id": case, "category": None, "region": None, "urgency": None, "policy_id": None, "policy_version": None,
           "closed": True, "redo_round": 0, "task": False}  # fmt: skip
    async with sla.runtime.uow() as uow:
        await repo.upsert_cases(await repo.driver(uow.session), [row])
        assert [dict(r) for r in await repo.cases_by_id(await repo.driver(uow.session), [case])] == [row]
    # left without commit
    async with sla.runtime.uow() as uow:
        assert await repo.cases_by_id(await repo.driver(uow.session), [case]) == []
        await repo.upsert_cases(await repo.driver(uow.session), [row])
        await uow.commit()
    assert (await rows_of(sla, case))["case"] == [{k: v for k, v in row.items() if k != "case_id"}]
