"""A holiday table loaded once moves every service's working days alike (docs/rules.md, Time
rules): the directory publishes it on the topic holiday-tables, dispatch and SLA follow it, and
an order's deadline computed after it is the same in dispatch's order and SLA's clock.

Directory, dispatch and SLA run in this process on one lifecycle topic and one holiday topic
(real PostgreSQL, real broker, real HTTP). The year is 2031, which the packaged calendar does
not know (weekends only): the table makes Wednesday 5 March 2031 a holiday. Dispatch's clock is
pinned on Monday 3 March 2031 and SLA counts from the event times, so the test means the same
on any day.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from dispatch.app import create_app as dispatch_app
from dispatch.settings import DispatchSettings
from dispatch.tests.helpers import CLERK, PinnedClock, pin_dispatch_clock
from services.directory.app import create_app as directory_app
from services.directory.settings import DirectorySettings
from dispatch.tests.helpers import orders_of
from shared.testing import AUDITOR, OPS, Infra, eventually, free_port, running, service_settings, unique
from sla.app import create_app as sla_app
from sla.tests.conftest import sla_settings
from tests.test_order_deadlines import at, bj, order_by_hand, sla_due

HOLIDAY = "2031-03-05"  # a Wednesday
TABLE = {"holidays": [HOLIDAY], "workdays": []}


@pytest.fixture(scope="module")
async def platform(infra: Infra):
    """Directory, dispatch and SLA, each with its own database, on shared topics."""
    topic, org_topic, holiday_topic = unique("lifecycle"), unique("org"), unique("holidays")
    topics = {"topic": topic}
    shared = {"org_topic": org_topic, "holiday_topic": holiday_topic}
    directory_settings = service_settings(DirectorySettings, infra, **topics, database=unique("directory"), **shared)
    dispatch_settings = service_settings(DispatchSettings, infra, **topics, database=unique("dispatch"), **shared)
    sla_config = sla_settings(infra, **topics, database=unique("sla"), **shared)
    async with (
        running(directory_app(directory_settings), directory_settings) as directory,
        running(dispatch_app(dispatch_settings), dispatch_settings) as dispatcher,
        running(sla_app(sla_config), sla_config) as sla,
    ):
        yield directory, dispatcher, sla


@pytest.fixture
def clock(monkeypatch) -> PinnedClock:
    return pin_dispatch_clock(monkeypatch, bj(2031, 3, 3, 9))


async def load_table(directory, dispatcher, sla) -> None:
    """Load the 2031 table in the directory and wait until dispatch and SLA follow it."""
    loaded = await directory.client.put("/api/v1/holidays/2031", json=TABLE, headers=OPS)
    assert loaded.status_code == 200, loaded.text
    assert loaded.json()["source"] == "table" and loaded.json()["holidays"] == [HOLIDAY]
    loaded_at = at(loaded.json()["loaded_at"])
    for service in (dispatcher, sla):
        calendar = await service.runtime.holidays.wait_for(2031, loaded_at)
        assert not calendar.is_workday(datetime.fromisoformat(HOLIDAY).date())


async def test_a_deadline_after_a_loaded_table_is_the_same_in_dispatch_and_sla(platform, clock):
    directory, dispatcher, sla = platform
    await load_table(directory, dispatcher, sla)
    # Dispatched Mon 3 Mar 10:00, general (5 working days): Tue 4, Thu 6, Fri 7, Mon 10, Tue 11
    # — the holiday on Wed 5 skipped. On weekends alone it would be Mon 10 Mar.
    order = await order_by_hand(dispatcher, clock, "general")
    due = bj(2031, 3, 11, 10)
    assert at(order["due_at"]) == due
    assert await sla_due(sla, order["case_id"], "resolve", due) == due
    # 退单 window, 2 working days: Tue 4 → Thu 6 Mar 10:00 (not Wed 5).
    assert at(order["return_due_at"]) == bj(2031, 3, 6, 10)
    assert await sla_due(sla, order["case_id"], "return_window", bj(2031, 3, 6, 10)) == bj(2031, 3, 6, 10)


async def test_the_table_is_the_directorys_and_sla_no_longer_loads_one(platform):
    directory, _, sla = platform
    refused = await directory.client.put("/api/v1/holidays/2032", json={"holidays": ["2031-01-01"]}, headers=OPS)
    assert refused.status_code == 422 and "bad-holiday-table" in refused.text, refused.text
    assert (await directory.client.put("/api/v1/holidays/2032", json={"holidays": []}, headers=CLERK)).status_code == 403
    assert (await directory.client.get("/api/v1/holidays/2026", headers=AUDITOR)).json()["source"] == "package"
    assert (await sla.client.put("/api/v1/holidays/2032", json={"holidays": []}, headers=OPS)).status_code in (404, 405)


@pytest.fixture
def clock_2033(monkeypatch) -> PinnedClock:
    # 2033: a year the packaged calendar does not know either (weekends only), and no other
    # test of this module loads a table for it. Monday 7 March 2033, 09:00.
    return pin_dispatch_clock(monkeypatch, bj(2033, 3, 7, 9))


def moves_of(order: dict) -> list[dict]:
    return [e for e in order["history"] if e["action"] == "deadline_moved"]


async def settled(dispatcher) -> None:
    """Until dispatch has no move of deadlines for a table still running."""
    async def idle():
        return not dispatcher.runtime.context.moves
    await eventually(idle, what="dispatch to finish applying the holiday table")


async def test_a_table_loaded_under_an_open_order_moves_its_deadline_once_in_dispatch_and_sla(platform, clock_2033):
    directory, dispatcher, sla = platform
    # Dispatched Mon 7 Mar 2033 10:00, general: on weekends alone due Mon 14 Mar 10:00, the
    # return window ends Wed 9 Mar 10:00 — both services show that before any table.
    order = await order_by_hand(dispatcher, clock_2033, "general")
    case_id, order_no = order["case_id"], order["order_no"]
    assert at(order["due_at"]) == bj(2033, 3, 14, 10)
    assert await sla_due(sla, case_id, "resolve", bj(2033, 3, 14, 10)) == bj(2033, 3, 14, 10)

    # The table makes Wednesday 9 March a holiday: Tue 8, Thu 10, Fri 11, Mon 14, Tue 15 → the
    # order's deadline is Tue 15 Mar 10:00; the return window (2 days: Tue 8, Thu 10) Thu 10 Mar.
    loaded = await directory.client.put("/api/v1/holidays/2033", json={"holidays": ["2033-03-09"], "workdays": []}, headers=OPS)
    assert loaded.status_code == 200, loaded.text
    await dispatcher.runtime.holidays.wait_for(2033, at(loaded.json()["loaded_at"]))
    due, return_due = bj(2033, 3, 15, 10), bj(2033, 3, 10, 10)

    async def order_now() -> dict:
        [now] = [o for o in await orders_of(dispatcher, case_id) if o["order_no"] == order_no]
        return now

    async def moved():
        return at((await order_now())["due_at"]) == due
    await eventually(moved, what="dispatch's order to show the deadline moved by the table")
    shown = await order_now()
    assert at(shown["return_due_at"]) == return_due
    assert await sla_due(sla, case_id, "resolve", due) == due
    assert await sla_due(sla, case_id, "return_window", return_due) == return_due
    assert len(moves_of(shown)) == 1 and moves_of(shown)[0]["detail"]["reason"] == "holiday table 2033"

    # The same schedule loaded again (a new version of the table), and a second replica of
    # dispatch on the same database replaying the topic from the start: nothing moves twice.
    again = await directory.client.put("/api/v1/holidays/2033", json={"holidays": ["2033-03-09"], "workdays": []}, headers=OPS)
    assert again.status_code == 200, again.text
    await dispatcher.runtime.holidays.wait_for(2033, at(again.json()["loaded_at"]))
    await settled(dispatcher)
    replica_settings = dispatcher.settings.model_copy(update={"port": free_port()})
    async with running(dispatch_app(replica_settings), replica_settings) as replica:
        await replica.runtime.holidays.wait_for(2033, at(again.json()["loaded_at"]))
        await settled(replica)
    after = await order_now()
    assert at(after["due_at"]) == due and at(after["return_due_at"]) == return_due
    assert len(moves_of(after)) == 1, moves_of(after)
    assert await sla_due(sla, case_id, "resolve", due) == due
