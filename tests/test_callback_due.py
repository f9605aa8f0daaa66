"""The callback's window (回访) as SLA's callback clock and notify's callback queue show it:
one rule (shared.callback) — calling from 09:00 on the working day after closure, late once
that day is over — so one deadline, and one instant at which the task is late, everywhere.

First the pure rules over closures at every hour of the 2026 National Day week (Mon 5 –
Sun 11 Oct: 5–7 Oct holidays, Saturday 10 Oct a make-up working day, 调休); then both
services running against real PostgreSQL and the broker, given one case.closed event."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from notify.domain import callback_view
from notify.tests.helpers import Case, callbacks_of, set_clock
from shared.actors import actor_headers
from shared.callback import callback_window
from shared.events import ClockKind
from shared.testing import AUDITOR, Infra, eventually, publish
from shared.workdays import WorkingCalendar
from sla.domain import Policy, policy_from_limits, signal_times, start_clock
from tests.stack import platform

BJ = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar()  # chinese-calendar's 2026 schedule, which both services read
SLA_ADMIN = actor_headers("ops-1", "ops")  # moves SLA's now (time travel)

# The day a closure on each date of the week is called back, read off the State Council's 2026
# schedule: the holidays wait for Thursday 8 Oct, Friday's closures for the make-up Saturday,
# Saturday's and Sunday's for Monday 12 Oct.
DUE_DAY = {
    date(2026, 10, 5): date(2026, 10, 8),
    date(2026, 10, 6): date(2026, 10, 8),
    date(2026, 10, 7): date(2026, 10, 8),
    date(2026, 10, 8): date(2026, 10, 9),
    date(2026, 10, 9): date(2026, 10, 10),
    date(2026, 10, 10): date(2026, 10, 12),
    date(2026, 10, 11): date(2026, 10, 12),
}
CLOSURES = [datetime.combine(day, datetime.min.time(), BJ) + timedelta(hours=h, minutes=35) for day in DUE_DAY for h in range(24)]


@pytest.mark.parametrize("closed", CLOSURES, ids=lambda c: c.strftime("%a%d-%H%M"))
def test_sla_and_notify_show_one_due_time_at_the_end_of_the_working_day_after(closed: datetime) -> None:
    sla_due = start_clock(ClockKind.callback, closed, Policy(), CAL).due_at
    window = callback_window(CAL, closed)  # what notify stores on its callback task
    assert sla_due == window.due_at
    day = DUE_DAY[closed.date()]
    assert CAL.is_workday(day)
    # Calling opens at 09:00 that day; it is due at the end of that day (00:00 of the next).
    assert window.opens_at.astimezone(BJ) == datetime(day.year, day.month, day.day, 9, tzinfo=BJ)
    assert window.due_at.astimezone(BJ) == datetime(day.year, day.month, day.day, tzinfo=BJ) + timedelta(days=1)


@pytest.mark.parametrize("closed", CLOSURES[::5], ids=lambda c: c.strftime("%a%d-%H%M"))
def test_notify_calls_it_overdue_the_instant_sla_shows_the_red_card(closed: datetime) -> None:
    clock = start_clock(ClockKind.callback, closed, Policy(), CAL)
    [red] = [at for name, at in signal_times(clock, Policy(), CAL) if name == "red"]
    window = callback_window(CAL, closed)
    tick = timedelta(microseconds=1)
    assert red > window.opens_at  # the call could be made before anyone is carded
    assert [callback_view(window.opens_at, window.due_at, t) for t in (red - tick, red)] == ["due", "overdue"]


def test_a_policy_cannot_move_the_callback_away_from_notify() -> None:
    # A limit notify cannot see would bring the disagreement back: old stored limits are ignored.
    closed = datetime(2026, 10, 9, 4, 35, tzinfo=BJ)
    policy = policy_from_limits(3, {"callback_working_days": 3})
    assert start_clock(ClockKind.callback, closed, policy, CAL).due_at == callback_window(CAL, closed).due_at


async def test_one_closure_gives_one_deadline_and_one_overdue_instant_on_the_sla_clock_and_the_notify_task(infra: Infra) -> None:
    async with platform(infra, ("sla", "notify")) as p:
        notify, sla, topic = p.services["notify"], p.services["sla"], p.topic
        async def both_at(moment: datetime) -> None:
            """Move notify's and SLA's now to ``moment``."""
            await set_clock(notify, moment)
            moved = await sla.client.post("/api/v1/admin/time", json={"now": moment.isoformat()}, headers=SLA_ADMIN)
            assert moved.status_code == 200, moved.text

        case = Case()
        # Monday 12 Oct 2026, 04:35 Beijing: nobody calls a citizen at that hour. Both services
        # live at that moment (whatever today is), so no card fires before the test moves on.
        closed_at = datetime(2026, 10, 12, 4, 35, tzinfo=BJ)
        await both_at(closed_at)
        await publish(infra.bootstrap_servers, topic, case.received(), case.accepted(), case.dispatched(), case.closed(closed_at))

        [task] = await eventually(lambda: callbacks_of(notify, case), what="notify's callback task")

        async def sla_callback():
            response = await sla.client.get(f"/api/v1/cases/{case.id}/clocks", headers=AUDITOR)
            clocks = response.json()["clocks"] if response.status_code == 200 else []
            return next((c for c in clocks if c["name"] == "callback"), None)

        clock = await eventually(sla_callback, what="sla's callback clock")
        due = datetime.fromisoformat(task["due_at"])
        assert datetime.fromisoformat(clock["due_at"]) == due
        # Called on Tuesday 13 Oct from 09:00; due at the end of that day.
        assert datetime.fromisoformat(task["opens_at"]) == datetime(2026, 10, 13, 9, 0, tzinfo=BJ)
        assert due == datetime(2026, 10, 14, 0, 0, tzinfo=BJ)

        async def view() -> str:
            [task] = await callbacks_of(notify, case)
            return task["view"]

        async def breached():
            return (await sla_callback())["state"] == "breached" or None

        # When calling opens, and a minute before the deadline: callable on notify's queue, and
        # no red card on SLA's clock after a few of its ticks (0.2 s apart) — an early one would fire.
        for moment in (datetime(2026, 10, 13, 9, 0, tzinfo=BJ), due - timedelta(minutes=1)):
            await both_at(moment)
            assert await view() == "due"
            await asyncio.sleep(1.5)
            assert (await sla_callback())["state"] == "running", moment
        # At the deadline: overdue on notify's queue, and SLA's red card.
        await both_at(due)
        assert await view() == "overdue"
        await eventually(breached, timeout=30, what="the red card at the deadline")
