"""Clocks from lifecycle events, against a running sla with real PostgreSQL and broker:
deadlines across holidays and 调休, pause/extension/redo, policies, holiday tables, replay."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.actors import actor_headers
from shared.bus import TopicSpec, ensure_topics
from shared.holidays import LoadedTable, publish_table
from shared.workdays import HolidayTable
from shared.testing import AUDITOR, Infra, TopicReader, eventually, publish, running, unique
from shared.events import Urgency
from sla.app import create_app
from sla.tests.conftest import sla_settings
from sla.tests.events import (
    UNIT, accepted, bj, filed, callback_completed, closed, county_called, progress, dispatched, extension_approved, received, reopened, resolved, resumed, signed,
    suspended, triaged,
)  # fmt: skip

ADMIN = actor_headers("sup-1", "centre_supervisor", "LB-ZZZX")  # the city's supervisor: city-wide rules
CLERK = actor_headers("clerk-1", "dept_clerk", UNIT)


@pytest.fixture(scope="module")
async def sla(infra: Infra):
    settings = sla_settings(infra, topic=unique("lifecycle"), database=unique("sla"), holiday_topic=unique("holidays"))
    await ensure_topics(infra.bootstrap_servers, [TopicSpec(settings.holiday_topic, 1, 1, (("cleanup.policy", "compact"),))])
    async with running(create_app(settings), settings) as service:
        yield service


async def clocks_of(service, case_id: str, *, want: int = 1) -> dict[str, dict]:
    """The case's clocks by name (resolve clocks of later rounds as resolve#N), once ``want`` exist."""

    async def fetch():
        response = await service.client.get(f"/api/v1/cases/{case_id}/clocks", headers=AUDITOR)
        if response.status_code != 200:
            return None
        body = response.json()["clocks"]
        return body if len(body) >= want else None

    rows = await eventually(fetch, timeout=30, what=f"{want} clocks of {case_id}")
    return {(c["name"] if c["round"] == 0 else f"{c['name']}#{c['round']}"): c for c in rows}


def at(iso: str):
    from datetime import datetime

    return datetime.fromisoformat(iso)


async def test_deadlines_across_the_national_day_week_and_its_make_up_saturday(sla, infra):
    case = unique("case")
    await publish(
        infra.bootstrap_servers, sla.settings.kafka_topic,
        received(case, bj(2026, 9, 29, 9)), accepted(case, bj(2026, 9, 29, 9, 30)),
        triaged(case, bj(2026, 9, 29, 10)), dispatched(case, bj(2026, 9, 30, 10)),
    )
    clocks = await clocks_of(sla, case, want=6)
    # Oct 1–7 are holidays, Saturday Oct 10 is a make-up working day (调休): 5 working days
    # from Wed Sep 30 10:00 end on Tue Oct 13 10:00, not Wed Oct 14.
    assert at(clocks["resolve"]["due_at"]) == bj(2026, 10, 13, 10)
    assert at(clocks["return_window"]["due_at"]) == bj(2026, 10, 9, 10)
    assert at(clocks["sign"]["due_at"]) == bj(2026, 9, 30, 11)
    assert at(clocks["first_contact"]["due_at"]) == bj(2026, 10, 1, 10)  # 24 h: calendar time
    assert at(clocks["accept"]["due_at"]) == bj(2026, 9, 30, 9) and clocks["accept"]["state"] == "stopped"
    assert clocks["accept"]["on_time"] is True
    assert at(clocks["dispatch"]["due_at"]) == bj(2026, 9, 29, 22)  # half a working day
    assert clocks["dispatch"]["state"] == "stopped" and clocks["dispatch"]["on_time"] is False
    assert all(not c["warnings"] for c in clocks.values())
    assert clocks["resolve"]["policy"] == {"policy_id": "default", "version": 1}

    # Long past due by now: the yellow card came 1 working day before — on the make-up Saturday.
    async with TopicReader.of(sla) as reader:
        warnings = await eventually(
            lambda: _signals(reader, case, "sla.warning", clocks["resolve"]["clock_id"]), what="the resolve yellow card"
        )
    assert at(warnings[0].payload.due_at.isoformat()) == bj(2026, 10, 13, 10) and warnings[0].payload.level == "yellow"


async def _signals(reader, case, kind, clock_id):
    return [e for e in await reader.events(case_id=case, types=kind) if e.payload.clock_id == clock_id]


async def load_table(sla, infra: Infra, year: int, holidays: list[str]) -> None:
    """Publish a year's table on SLA's holiday topic as the directory would, and wait until SLA follows it."""
    loaded = LoadedTable(HolidayTable.parse({"year": year, "holidays": holidays, "workdays": []}), datetime.now(UTC), "test")
    await publish_table(infra.bootstrap_servers, sla.settings.holiday_topic, loaded)
    await sla.runtime.holidays.wait_for(year, loaded.loaded_at)


async def test_a_deadline_into_an_unknown_year_counts_weekends_with_a_warning_until_the_table_is_loaded(sla, infra):
    # 2100: a year the holiday package will not know for decades (next year would stop being
    # unknown the day a new release learns its schedule); the year before is known through a
    # table, as the package's last year would be. 30 Dec 2099 is a Wednesday, 1 Jan 2100 a Friday.
    before, after = unique("case"), unique("case")
    await load_table(sla, infra, 2099, [])
    await publish(infra.bootstrap_servers, sla.settings.kafka_topic, *filed(before, bj(2099, 12, 30, 9)), dispatched(before, bj(2099, 12, 30, 10)))
    guessed = (await clocks_of(sla, before, want=4))["resolve"]
    assert at(guessed["due_at"]) == bj(2100, 1, 6, 10)  # Wed + 5 working days, weekends only
    assert guessed["warnings"] == ["no holiday table for 2100: counted weekends only; load the year's schedule"]

    await load_table(sla, infra, 2100, ["2100-01-01"])
    # The order's deadline is dispatch's (it owns it and carries a moved one on its events):
    # SLA does not recount it, so the two cannot disagree.
    kept = (await clocks_of(sla, before, want=4))["resolve"]
    assert at(kept["due_at"]) == bj(2100, 1, 6, 10)

    await publish(infra.bootstrap_servers, sla.settings.kafka_topic, *filed(after, bj(2099, 12, 30, 9)), dispatched(after, bj(2099, 12, 30, 10)))
    counted = (await clocks_of(sla, after, want=4))["resolve"]
    assert at(counted["due_at"]) == bj(2100, 1, 7, 10)  # New Year's Day off, from the table followed
    assert counted["warnings"] == []


async def test_the_order_deadlines_are_the_ones_dispatch_carries(sla, infra):
    """Dispatch owns the order: whatever limits it was configured with, sla's resolve and
    return-window clocks show the times on its events, never a count of their own."""
    case = unique("case")
    topic = sla.settings.kafka_topic
    # Dispatched Mon 23 Nov 10:00 by a dispatch whose general class is 4 working days and whose
    # return window is 1 (sla's own defaults would give Mon 30 Nov and Wed 25 Nov).
    await publish(
        infra.bootstrap_servers, topic, *filed(case, bj(2026, 11, 23, 9)),
        dispatched(case, bj(2026, 11, 23, 10), due_at=bj(2026, 11, 27, 10), return_due_at=bj(2026, 11, 24, 10)),
        signed(case, bj(2026, 11, 23, 11)), suspended(case, bj(2026, 11, 24, 10), UNIT),
    )  # fmt: skip
    clocks = await clocks_of(sla, case, want=4)
    assert at(clocks["resolve"]["due_at"]) == bj(2026, 11, 27, 10)
    assert at(clocks["return_window"]["due_at"]) == bj(2026, 11, 24, 10)

    async def due_is(name, when):
        c = (await clocks_of(sla, case, want=4)).get(name)
        return c if c and at(c["due_at"]) == when else None

    # Signed within the window: the window is over (a signed order cannot be returned).
    window = await eventually(lambda: due_is("return_window", bj(2026, 11, 24, 10)), what="the carried return window")
    assert window["state"] == "stopped" and at(window["stopped_at"]) == bj(2026, 11, 23, 11)
    # Each later deadline differs from what sla's own count would give (Mon 30 Nov, Fri 4 Dec,
    # Mon 14 Dec): the clock shows the one dispatch carried.
    await publish(infra.bootstrap_servers, topic, resumed(case, bj(2026, 11, 25, 10), UNIT, due_at=bj(2026, 12, 1, 10)))
    await eventually(lambda: due_is("resolve", bj(2026, 12, 1, 10)), what="the resumed deadline dispatch carried")
    await publish(infra.bootstrap_servers, topic, extension_approved(case, bj(2026, 11, 26, 9), 3, new_due_at=bj(2026, 12, 3, 10)))
    await eventually(lambda: due_is("resolve", bj(2026, 12, 3, 10)), what="the extended deadline dispatch carried")
    await publish(
        infra.bootstrap_servers, topic,
        resolved(case, bj(2026, 12, 2, 10)), closed(case, bj(2026, 12, 2, 11)),
        reopened(case, bj(2026, 12, 7, 10), 1, due_at=bj(2026, 12, 11, 10)),
    )  # fmt: skip
    await eventually(lambda: due_is("resolve#1", bj(2026, 12, 11, 10)), what="the redo deadline dispatch carried")


async def test_pause_extension_and_redo_recompute_the_deadline(sla, infra):
    case = unique("case")
    topic = sla.settings.kafka_topic
    await publish(infra.bootstrap_servers, topic, *filed(case, bj(2026, 11, 23, 9)), dispatched(case, bj(2026, 11, 23, 10)), suspended(case, bj(2026, 11, 24, 10)))

    async def paused():
        c = (await clocks_of(sla, case, want=4))["resolve"]
        return c if c["state"] == "paused" else None

    assert at((await eventually(paused, what="resolve paused"))["due_at"]) == bj(2026, 11, 30, 10)

    # Two working days waiting on the citizen move the due time by two working days.
    await publish(infra.bootstrap_servers, topic, resumed(case, bj(2026, 11, 26, 10)))

    async def due_is(name, when):
        c = (await clocks_of(sla, case, want=4)).get(name)
        return c if c and at(c["due_at"]) == when else None

    resolve = await eventually(lambda: due_is("resolve", bj(2026, 12, 2, 10)), what="resumed deadline")
    assert resolve["state"] in ("running", "breached")

    # Extension of 3 working days approved before the due time: counted from the due time.
    await publish(infra.bootstrap_servers, topic, extension_approved(case, bj(2026, 12, 1, 15), 3))
    await eventually(lambda: due_is("resolve", bj(2026, 12, 7, 10)), what="extended deadline")

    await publish(infra.bootstrap_servers, topic, signed(case, bj(2026, 11, 23, 10, 40)), resolved(case, bj(2026, 12, 3, 10)), closed(case, bj(2026, 12, 4, 10)))
    # Closed Friday 10:00: the callback is made on Monday and due at its end (Tuesday 00:00), as
    # on notify's queue (shared.callback).
    callback = await eventually(lambda: due_is("callback", bj(2026, 12, 8, 0)), what="callback clock")
    assert callback["state"] in ("running", "breached")
    clocks = await clocks_of(sla, case)
    assert clocks["resolve"]["state"] == "stopped" and clocks["resolve"]["on_time"] is True
    assert clocks["verify"]["state"] == "stopped"
    assert all(c["state"] == "stopped" for n, c in clocks.items() if n != "callback")

    # 重办: a new resolve clock for round 1 from the reopening; the callback is done with.
    await publish(infra.bootstrap_servers, topic, reopened(case, bj(2026, 12, 8, 10), 1))
    redo = await eventually(lambda: due_is("resolve#1", bj(2026, 12, 15, 10)), what="redo resolve clock")
    assert redo["unit"] == UNIT
    assert (await clocks_of(sla, case))["callback"]["state"] == "stopped"

    # The third redo escalates to supervision (督办) once, however often round 3 is announced.
    await publish(
        infra.bootstrap_servers, topic,
        reopened(case, bj(2026, 12, 10, 10), 2), reopened(case, bj(2026, 12, 14, 10), 3), reopened(case, bj(2026, 12, 14, 11), 3),
    )
    await eventually(lambda: due_is("resolve#3", bj(2026, 12, 21, 10)), what="round 3 clock")
    # 13 lifecycle events (intake's two, dispatch's eleven), then sla's own escalation back
    # from the topic: everything is in.
    async def applied():
        status = (await sla.client.get(f"/api/v1/cases/{case}/status", headers=AUDITOR)).json()
        return status if status["events_applied"] >= 14 else None

    await eventually(applied, what="every event of the case applied")
    async with TopicReader(infra.bootstrap_servers, topic) as reader:
        escalations = await eventually(lambda: _redo_escalations(reader, case), what="redo_limit escalation")
    assert len(escalations) == 1 and "redo round 3" in escalations[0].payload.detail


async def _redo_escalations(reader, case):
    return [e for e in await reader.events(case_id=case, types="sla.escalated") if e.payload.reason == "redo_limit"]


async def test_policies_are_versioned_and_a_case_keeps_its_version(sla, infra):
    body = {
        "policy_id": unique("urgent"), "urgency": "urgent", "effective_from": "2026-01-01T00:00:00+08:00",
        "limits": {"sign_minutes": 20, "early_warnings": [0.5]},
    }
    assert (await sla.client.post("/api/v1/policies", json=body, headers=CLERK)).status_code == 403
    bad = await sla.client.post("/api/v1/policies", json={**body, "limits": {"sign_hours": 1}}, headers=ADMIN)
    assert bad.status_code == 422
    # The order's deadlines are dispatch's: a policy that tries to set them is refused, saying so.
    for owned in ({"resolve_working_days": {"general": 2}}, {"return_window_working_days": 1}):
        refused = await sla.client.post("/api/v1/policies", json={**body, "limits": {**body["limits"], **owned}}, headers=ADMIN)
        assert refused.status_code == 422 and "set by dispatch" in refused.json()["errors"][0]["message"], refused.text
    v1 = await sla.client.post("/api/v1/policies", json=body, headers=ADMIN)
    assert v1.status_code == 201, v1.text
    assert v1.json()["version"] == 1 and v1.json()["effective_limits"]["verify_working_days"] == 2
    assert "resolve_working_days" not in v1.json()["effective_limits"]

    first = unique("case")
    await publish(
        infra.bootstrap_servers, sla.settings.kafka_topic,
        *filed(first, bj(2026, 3, 2, 8)), triaged(first, bj(2026, 3, 2, 9), urgency=Urgency.urgent), dispatched(first, bj(2026, 3, 2, 10)),
    )
    clocks = await clocks_of(sla, first, want=5)
    assert at(clocks["sign"]["due_at"]) == bj(2026, 3, 2, 10, 20)
    assert at(clocks["resolve"]["due_at"]) == bj(2026, 3, 9, 10)  # the order's 5 working days, whatever the policy
    assert clocks["resolve"]["policy"] == {"policy_id": body["policy_id"], "version": 1}

    async def early_fired():
        fired = (await clocks_of(sla, first, want=5))["resolve"]["signals_fired"]
        return fired if "50%" in fired else None

    await eventually(early_fired, what="the policy's optional 50% threshold")

    v2 = await sla.client.post(
        "/api/v1/policies", json={**body, "effective_from": "2026-06-01T00:00:00+08:00", "limits": {"sign_minutes": 10}}, headers=ADMIN
    )
    assert v2.status_code == 201 and v2.json()["version"] == 2
    rescoped = await sla.client.post("/api/v1/policies", json={**body, "urgency": "normal"}, headers=ADMIN)
    assert rescoped.status_code == 409 and rescoped.json()["field"] == "region/category/urgency"

    second = unique("case")
    await publish(
        infra.bootstrap_servers, sla.settings.kafka_topic,
        *filed(second, bj(2026, 7, 1, 8)), triaged(second, bj(2026, 7, 1, 9), urgency=Urgency.urgent), dispatched(second, bj(2026, 7, 1, 10)),
        dispatched(first, bj(2026, 7, 1, 10), unit="LB-XC-SWJ", role="co"),  # a co-handler added later
    )
    second_clocks = await clocks_of(sla, second, want=5)
    assert at(second_clocks["sign"]["due_at"]) == bj(2026, 7, 1, 10, 10) and at(second_clocks["resolve"]["due_at"]) == bj(2026, 7, 8, 10)
    later = await clocks_of(sla, first, want=8)
    co = [c for c in later.values() if c["unit"] == "LB-XC-SWJ"]
    assert co and all(c["policy"]["version"] == 1 for c in co)  # the case keeps the version it started under
    assert "first_contact" not in {c["kind"] for c in co}  # the lead speaks to the citizen, not a co-handler

    listed = (await sla.client.get("/api/v1/policies", headers=AUDITOR)).json()
    assert [p["version"] for p in listed if p["policy_id"] == body["policy_id"]] == [1, 2]
    assert (await sla.client.get(f"/api/v1/policies/{body['policy_id']}", params={"version": 1}, headers=AUDITOR)).json()["limits"]["sign_minutes"] == 20
    assert (await sla.client.get("/api/v1/policies/nope", headers=AUDITOR)).status_code == 404


async def test_unit_lists_and_board_follow_the_moved_now(sla, infra):
    unit = unique("UNIT")
    soon, late = unique("case"), unique("case")
    # Real now is moved to Wed 2 Dec 2026 12:00; one order due Thu 3 Dec 10:00, one overdue.
    moved = await sla.client.post("/api/v1/admin/time", json={"now": "2026-12-02T12:00:00+08:00"}, headers=ADMIN)
    assert moved.status_code == 200 and at(moved.json()["now"]) - bj(2026, 12, 2, 12) < timedelta(seconds=5)
    await publish(
        infra.bootstrap_servers, sla.settings.kafka_topic,
        *filed(soon, bj(2026, 11, 26, 9)), dispatched(soon, bj(2026, 11, 26, 10), unit=unit), signed(soon, bj(2026, 11, 26, 10, 30), unit),
        *filed(late, bj(2026, 11, 20, 9)), dispatched(late, bj(2026, 11, 20, 10), unit=unit), signed(late, bj(2026, 11, 20, 10, 30), unit),
    )
    await clocks_of(sla, soon, want=4)
    await clocks_of(sla, late, want=4)

    async def overdue_resolve():
        body = (await sla.client.get(f"/api/v1/units/{unit}/clocks", params={"view": "overdue", "limit": 2}, headers=AUDITOR)).json()
        return body if any(i["case_id"] == late and i["name"] == "resolve" for i in body["items"]) or body["next_cursor"] else None

    page = await eventually(overdue_resolve, what="overdue list")
    seen = list(page["items"])
    while page["next_cursor"]:
        page = (await sla.client.get(f"/api/v1/units/{unit}/clocks", params={"view": "overdue", "limit": 2, "cursor": page["next_cursor"]}, headers=AUDITOR)).json()
        seen += page["items"]
    overdue = {(i["case_id"], i["name"]) for i in seen}
    assert (late, "resolve") in overdue and (soon, "resolve") not in overdue
    assert all(i["overdue"] and i["remaining_text"].startswith("超期") for i in seen)
    due_soon = (await sla.client.get(f"/api/v1/units/{unit}/clocks", params={"view": "due_soon"}, headers=AUDITOR)).json()["items"]
    assert [(i["case_id"], i["name"]) for i in due_soon] == [(soon, "resolve")]
    assert due_soon[0]["remaining_seconds"] == 22 * 3600 or abs(due_soon[0]["remaining_seconds"] - 22 * 3600) < 60
    board = (await sla.client.get("/api/v1/board", headers=AUDITOR)).json()
    row = next(u for u in board["units"] if u["unit"] == unit)
    assert row == {"unit": unit, "yellow": 1, "red": len(overdue)}
    assert (await sla.client.get("/api/v1/units/x/clocks", params={"cursor": "garbage!"}, headers=AUDITOR)).status_code == 400
    await sla.client.post("/api/v1/admin/time", json={"now": "2026-11-23T12:00:00+08:00"}, headers=ADMIN)


async def test_county_call_response_clocks_first_contact_and_nothing_after_closing(sla, infra):
    case = unique("case")
    topic = sla.settings.kafka_topic
    await publish(
        infra.bootstrap_servers, topic, *filed(case, bj(2026, 11, 23, 9)),
        dispatched(case, bj(2026, 11, 23, 10)), county_called(case, bj(2026, 11, 23, 11), ["LB-ZJJ", "LB-SWJ"], minutes=45),
        progress(case, bj(2026, 11, 23, 11, 30), "LB-SWJ"), progress(case, bj(2026, 11, 23, 12), first_contact=True),
    )

    async def settled():
        clocks = await clocks_of(sla, case, want=6)
        return clocks if clocks["first_contact"]["state"] == "stopped" else None

    clocks = await eventually(settled, what="first contact stopped")
    responses = {c["unit"]: c for c in (await sla.client.get(f"/api/v1/cases/{case}/clocks", headers=AUDITOR)).json()["clocks"] if c["name"] == "response"}
    assert {u: at(c["due_at"]) for u, c in responses.items()} == {"LB-ZJJ": bj(2026, 11, 23, 11, 45), "LB-SWJ": bj(2026, 11, 23, 11, 45)}
    assert responses["LB-SWJ"]["state"] == "stopped" and responses["LB-SWJ"]["on_time"] is True
    assert responses["LB-ZJJ"]["state"] in ("running", "breached")  # no word from it yet
    assert clocks["first_contact"]["on_time"] is True

    # Closed: every clock stops, and a late order starts nothing (only the callback clock runs).
    await publish(infra.bootstrap_servers, topic, closed(case, bj(2026, 11, 24, 9)), dispatched(case, bj(2026, 11, 24, 10), unit="LB-LATE"))

    async with TopicReader(infra.bootstrap_servers, topic) as reader:
        # Eight lifecycle events (intake's two, dispatch's six) plus every warning sla wrote for
        # the case (they come back too).
        async def applied():
            own = await reader.events(case_id=case, types=("sla.warning", "sla.breached", "sla.urged", "sla.escalated"))
            status = (await sla.client.get(f"/api/v1/cases/{case}/status", headers=AUDITOR)).json()
            return status["events_applied"] >= 8 + len(own)

        await eventually(applied, what="close and the late order applied")
    after = (await sla.client.get(f"/api/v1/cases/{case}/clocks", headers=AUDITOR)).json()["clocks"]
    assert {c["name"] for c in after if c["state"] != "stopped"} == {"callback"}
    assert not [c for c in after if c["unit"] == "LB-LATE"]


@pytest.mark.slow
async def test_replaying_the_topic_into_a_fresh_database_gives_the_same_deadlines(sla, infra):
    case = unique("case")
    await publish(
        infra.bootstrap_servers, sla.settings.kafka_topic,
        received(case, bj(2026, 9, 28, 9)), accepted(case, bj(2026, 9, 28, 10)), triaged(case, bj(2026, 9, 28, 11)),
        dispatched(case, bj(2026, 9, 29, 16)), suspended(case, bj(2026, 9, 30, 9)), resumed(case, bj(2026, 10, 9, 9)),
        extension_approved(case, bj(2026, 10, 20, 9), 2),
    )

    async def settled(service):
        clocks = await clocks_of(service, case, want=6)
        return clocks if clocks["resolve"]["paused_at"] is None and clocks["resolve"]["state"] != "paused" and at(clocks["resolve"]["due_at"]) > bj(2026, 10, 20) else None

    original = await eventually(lambda: settled(sla), what="original clocks")
    fresh = sla_settings(infra, topic=sla.settings.kafka_topic, database=unique("sla_replay"))
    async with running(create_app(fresh), fresh) as replay:
        replayed = await eventually(lambda: settled(replay), timeout=60, what="replayed clocks")
    keys = ("clock_id", "started_at", "due_at", "stopped_at", "warnings", "policy")
    assert {n: {k: c[k] for k in keys} for n, c in replayed.items()} == {n: {k: c[k] for k in keys} for n, c in original.items()}


async def test_a_callback_closed_as_unreachable_stops_the_callback_clock(sla, infra):
    # Notify writes case.callback_completed only for an outcome: reached, or unreachable after
    # its last try. Given up is done with: no 催办 or 督办 for a call that cannot be made.
    case = unique("case")
    topic = sla.settings.kafka_topic
    await publish(infra.bootstrap_servers, topic, *filed(case, bj(2026, 10, 9, 9)), closed(case, bj(2026, 10, 9, 16)))

    async def callback_clock():
        # The filing's clock may show before the closing is handled (another batch): wait for the callback clock.
        return (await clocks_of(sla, case)).get("callback")

    clock = await eventually(callback_clock, what="the callback clock")
    assert at(clock["due_at"]) == bj(2026, 10, 11, 0)  # by the end of Saturday 10 Oct 2026, a make-up working day (调休)

    await publish(infra.bootstrap_servers, topic, callback_completed(case, bj(2026, 10, 13, 10), reached=False, attempt=3))

    async def stopped():
        c = (await clocks_of(sla, case))["callback"]
        return c if c["state"] == "stopped" else None

    await eventually(stopped, what="callback clock stopped by the unreachable outcome")
