"""The callback (回访) due time as SLA's callback clock and notify's callback queue show it:
one rule (shared.callback), so the same instant for every closure.

First the pure rules over closures at every hour of the 2026 National Day week (Mon 5 –
Sun 11 Oct: 5–7 Oct holidays, Saturday 10 Oct a make-up working day, 调休); then both
services running against real PostgreSQL and the broker, given one case.closed event."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from notify.app import create_app as create_notify
from notify.settings import NotifySettings
from notify.tests.conftest import serving_receiver
from notify.tests.helpers import Case, callbacks_of
from shared.callback import callback_due
from shared.events import ClockKind
from shared.testing import AUDITOR, Infra, eventually, publish, running, service_settings, unique
from shared.workdays import WorkingCalendar
from sla.app import create_app as create_sla
from sla.domain import Policy, policy_from_limits, start_clock
from sla.tests.conftest import sla_settings

BJ = ZoneInfo("Asia/Shanghai")
CAL = WorkingCalendar()  # chinese-calendar's 2026 schedule, which both services read

# The day a closure on each date of the week falls due, read off the State Council's 2026
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
def test_sla_and_notify_show_one_due_time_at_09_on_the_working_day_after(closed: datetime) -> None:
    sla_due = start_clock(ClockKind.callback, closed, Policy(), CAL).due_at
    notify_due = callback_due(CAL, closed)  # what notify stores on its callback task
    assert sla_due == notify_due
    local = notify_due.astimezone(BJ)
    assert (local.date(), local.hour, local.minute) == (DUE_DAY[closed.date()], 9, 0)
    assert CAL.is_workday(local.date())


def test_a_policy_cannot_move_the_callback_away_from_notify() -> None:
    # A limit notify cannot see would bring the disagreement back: old stored limits are ignored.
    closed = datetime(2026, 10, 9, 4, 35, tzinfo=BJ)
    policy = policy_from_limits(3, {"callback_working_days": 3})
    assert start_clock(ClockKind.callback, closed, policy, CAL).due_at == callback_due(CAL, closed)


async def test_one_closure_gives_the_same_due_time_on_the_sla_clock_and_the_notify_task(infra: Infra) -> None:
    topic = unique("lifecycle")
    async with serving_receiver() as receiver:
        notify_settings = service_settings(
            NotifySettings, infra, topic=topic, database=unique("notify"),
            sms_url=f"{receiver.url}/sms", wechat_url=f"{receiver.url}/wechat",
            hotline_webhook_url=f"{receiver.url}/hotline", hotline_client_id="jiesu-notify",
            hotline_webhook_secret="test-webhook-secret", sender_poll_seconds=0.05, test_clock=True,
        )  # fmt: skip
        sla_app_settings = sla_settings(infra, topic=topic, database=unique("sla"))
        async with running(create_notify(notify_settings), notify_settings) as notify, \
                running(create_sla(sla_app_settings), sla_app_settings) as sla:  # fmt: skip
            case = Case()
            # Monday 12 Oct 2026, 04:35 Beijing: nobody calls a citizen at that hour.
            closed_at = datetime(2026, 10, 12, 4, 35, tzinfo=BJ)
            await publish(infra.bootstrap_servers, topic, case.received(), case.accepted(), case.dispatched(), case.closed(closed_at))

            [task] = await eventually(lambda: callbacks_of(notify, case), what="notify's callback task")

            async def sla_callback():
                response = await sla.client.get(f"/api/v1/cases/{case.id}/clocks", headers=AUDITOR)
                clocks = response.json()["clocks"] if response.status_code == 200 else []
                return next((c for c in clocks if c["name"] == "callback"), None)

            clock = await eventually(sla_callback, what="sla's callback clock")
            assert datetime.fromisoformat(clock["due_at"]) == datetime.fromisoformat(task["due_at"])
            assert datetime.fromisoformat(task["due_at"]) == datetime(2026, 10, 13, 9, 0, tzinfo=BJ)
