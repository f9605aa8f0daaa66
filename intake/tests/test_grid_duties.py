"""Grid duties through intake's HTTP API (issue #23 item 7): the household register (结一联十,
困难/重点监测), visits, the mailbox schedule and its openings (定时开箱取信), proxy services
from the catalogue (帮办代办), and the warnings a monthly check raises for missed duties.

Dates are pinned in October 2026 — a month long over on any day these tests run."""

import asyncio
from datetime import timedelta

import pytest

from intake.app import create_app
from intake.grid_rules import month_bounds, month_of
from intake.settings import IntakeSettings
from intake.tests.test_grid import _events
from shared.actors import actor_headers
from shared.events import utcnow
from shared.testing import AUDITOR, OPS, Infra, eventually, running, service_settings, unique

GRID = "LB-XC-CG-CZ-G01"  # 城中社区's first grid
OTHER_GRID = "LB-XC-CG-CZ-G02"
WORKER = actor_headers("gw-cz-1", "grid_worker", GRID)
OTHER_WORKER = actor_headers("gw-cz-2", "grid_worker", OTHER_GRID)
COMMUNITY = actor_headers("cz-staff", "village_staff", "LB-XC-CG-CZ")  # 城中社区
OTHER_VILLAGE = actor_headers("cd-staff", "village_staff", "LB-XC-CG-CD")  # 城东社区: a neighbour of the same township
TOWNSHIP_HEAD = actor_headers("cg-head", "township_head", "LB-XC-CG")  # 城关镇
FAR_TOWNSHIP_HEAD = actor_headers("tw-head", "township_head", "LB-WX-TW")  # 通挽镇, another county
CLERK = actor_headers("clerk", "dept_clerk", "LB-XC-ZJJ")


async def _put(intake, ref: str, body: dict, who: dict):
    return await intake.client.put(f"/api/v1/grid/register/{ref}", json=body, headers=who)


async def test_the_register_keeps_who_keeps_which_household_in_scope(intake):
    # A worker registers households of their own grid; they keep them unless told otherwise.
    mine = await _put(intake, "CZ-H001", {"grid": GRID, "difficult": True}, WORKER)
    assert mine.status_code == 200, mine.text
    assert (mine.json()["keeper_id"], mine.json()["difficult"]) == ("gw-cz-1", True)
    assert (await _put(intake, "CZ-H002", {"grid": OTHER_GRID}, WORKER)).status_code == 422
    # The community (城中社区) assigns households and organisers (结一联十) on its grids; another village may not.
    by_community = await _put(intake, "CZ-H003", {"grid": GRID, "keeper_id": "gw-cz-1", "organiser_id": "org-wang",
                                                  "monitored": True}, COMMUNITY)  # fmt: skip
    assert by_community.status_code == 200 and by_community.json()["organiser_id"] == "org-wang"
    refused = await _put(intake, "CZ-H004", {"grid": GRID}, OTHER_VILLAGE)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "grid"
    assert (await _put(intake, "CZ-H004", {"grid": GRID}, CLERK)).status_code == 403
    # A household on one grid's register is not the other grid's worker to move.
    assert (await _put(intake, "CZ-H001", {"grid": OTHER_GRID}, OTHER_WORKER)).status_code == 409

    # Reads: the grid's worker, the community and the township above; nobody else's area.
    for who in (WORKER, COMMUNITY, TOWNSHIP_HEAD, AUDITOR):
        view = await intake.client.get("/api/v1/grid/register", params={"grid": GRID}, headers=who)
        assert view.status_code == 200, (who, view.text)
        assert {h["household_ref"] for h in view.json()["households"]} == {"CZ-H001", "CZ-H003"}
        assert view.json()["flagged"] == 2 and view.json()["organisers"] == [{"organiser_id": "org-wang", "households": 1}]
    for who in (OTHER_WORKER, OTHER_VILLAGE, FAR_TOWNSHIP_HEAD):
        assert (await intake.client.get("/api/v1/grid/register", params={"grid": GRID}, headers=who)).status_code == 404
    assert (await intake.client.get("/api/v1/grid/register", params={"grid": GRID}, headers=CLERK)).status_code == 403


async def test_an_organiser_keeps_about_ten_households(intake):
    for n in range(15):
        answer = await _put(intake, f"QJ-H{n:03d}", {"grid": "LB-XC-CG-BJ-G01", "organiser_id": "org-li"}, TOWNSHIP_HEAD)
        assert answer.status_code == 200, answer.text
    sixteenth = await _put(intake, "QJ-H099", {"grid": "LB-XC-CG-BJ-G01", "organiser_id": "org-li"}, TOWNSHIP_HEAD)
    assert sixteenth.status_code == 422 and sixteenth.json()["errors"][0]["field"] == "organiser_id"
    # Re-saving one of the fifteen is not a sixteenth.
    assert (await _put(intake, "QJ-H000", {"grid": "LB-XC-CG-BJ-G01", "organiser_id": "org-li", "difficult": True},
                       TOWNSHIP_HEAD)).status_code == 200  # fmt: skip


async def test_visits_openings_and_proxy_services_count_and_missed_ones_are_warned(intake):
    # On the register since 1 October (the month is judged against the register as it stood then).
    for ref, flags in (("CZ-V01", {"difficult": True}), ("CZ-V02", {"monitored": True}), ("CZ-V03", {})):
        since = {"effective_at": "2026-10-01T08:00:00+08:00"}
        assert (await _put(intake, ref, {"grid": OTHER_GRID, **flags, **since}, COMMUNITY)).status_code == 200
    # The community sets the mailbox schedule: Mondays (October 2026: the 5th, 12th, 19th, 26th).
    schedule = {"weekdays": [1]}
    assert (await intake.client.put(f"/api/v1/grid/mailbox/schedules/{OTHER_GRID}", json=schedule, headers=OTHER_WORKER)).status_code == 403
    assert (await intake.client.put(f"/api/v1/grid/mailbox/schedules/{OTHER_GRID}", json=schedule, headers=COMMUNITY)).status_code == 200

    visit = {"household_ref": "CZ-V01", "visited_at": "2026-10-14T10:00:00+08:00"}
    answer = await intake.client.post("/api/v1/grid/visits", json=visit, headers=OTHER_WORKER)
    assert answer.status_code == 201 and answer.json()["detail"] == {"household_ref": "CZ-V01", "flagged": True}
    # A household of another grid's register is not this worker's to visit; a visit in the future is a wrong clock.
    assert (await intake.client.post("/api/v1/grid/visits", json=visit, headers=WORKER)).status_code == 404
    future = await intake.client.post("/api/v1/grid/visits", json={**visit, "visited_at": "2999-01-01T00:00:00+08:00"}, headers=OTHER_WORKER)
    assert future.status_code == 422
    # CZ-V02 was visited on 1 November, 00:30 local: that is November, not October.
    late = {"household_ref": "CZ-V02", "visited_at": "2026-11-01T00:30:00+08:00"}
    assert (await intake.client.post("/api/v1/grid/visits", json=late, headers=OTHER_WORKER)).status_code == 201
    for day in ("05", "12", "19"):
        opened = {"opened_at": f"2026-10-{day}T09:00:00+08:00", "letters": 2}
        assert (await intake.client.post("/api/v1/grid/mailbox/openings", json=opened, headers=OTHER_WORKER)).status_code == 201

    catalogue = (await intake.client.get("/api/v1/grid/services/catalogue", headers=OTHER_WORKER)).json()
    assert len(catalogue["classes"]) == 4 and len(catalogue["items"]) == 50
    service = {"item": "BEN-01", "household_ref": "CZ-V01", "done_at": "2026-10-15T15:00:00+08:00"}
    done = await intake.client.post("/api/v1/grid/services", json=service, headers=OTHER_WORKER)
    assert done.status_code == 201 and done.json()["detail"]["class"] == "benefits"
    unknown = await intake.client.post("/api/v1/grid/services", json={**service, "item": "XXX-99"}, headers=OTHER_WORKER)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "item"

    month = await intake.client.get("/api/v1/grid/duties", params={"grid": OTHER_GRID, "month": "2026-10"}, headers=TOWNSHIP_HEAD)
    assert month.status_code == 200, month.text
    body = month.json()
    assert {h["household_ref"]: h["visits"] for h in body["flagged_households"]} == {"CZ-V01": 1, "CZ-V02": 0}
    assert body["visits_missed"] == ["CZ-V02"] and body["mailbox"]["missed_days"] == ["2026-10-26"]
    assert body["proxy_services"] == {"benefits": 1}
    assert (await intake.client.get("/api/v1/grid/duties", params={"grid": OTHER_GRID, "month": "2026-10"},
                                    headers=WORKER)).status_code == 404  # fmt: skip

    # The monthly check: ops (or a centre's supervisor) runs it once the month is over.
    assert (await intake.client.post("/api/v1/grid/checks", json={"month": "2026-10"}, headers=OTHER_WORKER)).status_code == 403
    assert (await intake.client.post("/api/v1/grid/checks", json={"month": "2999-10"}, headers=OPS)).status_code == 422
    # Year 0 is no month at all (the fuzzer's 0000-01 was a 500): refused like any month out of range.
    for month in ("0000-01", "9999-12"):
        refused = await intake.client.post("/api/v1/grid/checks", json={"month": month}, headers=OPS)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "month", refused.text
        read = await intake.client.get("/api/v1/grid/duties", params={"grid": GRID, "month": month}, headers=TOWNSHIP_HEAD)
        assert read.status_code == 422, read.text
    checked = await intake.client.post("/api/v1/grid/checks", json={"month": "2026-10"}, headers=OPS)
    assert checked.status_code == 200, checked.text
    mine = {(w["kind"], w["subject"]) for w in checked.json()["warnings"] if w["grid"] == OTHER_GRID}
    assert mine == {("visit_missed", "CZ-V02"), ("mailbox_missed", "2026-10-26")}
    again = await intake.client.post("/api/v1/grid/checks", json={"month": "2026-10"}, headers=OPS)
    assert [w for w in again.json()["warnings"] if w["grid"] == OTHER_GRID] == []  # warned once

    events = await _events(intake)
    warnings = [e for e in events if e.type == "grid.warning" and e.payload.grid == OTHER_GRID and e.payload.period == "2026-10"]
    assert sorted((e.payload.kind, e.payload.village, e.payload.period) for e in warnings) == [
        ("mailbox_missed", "LB-XC-CG-CZ", "2026-10"), ("visit_missed", "LB-XC-CG-CZ", "2026-10")]
    kinds = [e.payload.kind for e in events if e.type == "grid.activity" and e.payload.grid == OTHER_GRID]
    assert (kinds.count("visit"), kinds.count("mailbox_opened"), kinds.count("proxy_service")) == (2, 3, 1)


@pytest.fixture(scope="module")
async def checking_intake(infra: Infra, tmp_path_factory):
    """Intake checking every grid on its own every 1.2 s (``INTAKE_GRID_CHECK_MINUTES``)."""
    settings = service_settings(
        IntakeSettings, infra, topic=unique("lifecycle"), database=unique("intake"), org_topic=unique("org"),
        attachment_dir=tmp_path_factory.mktemp("attachments"), grid_check_minutes=0.02,
    )  # fmt: skip
    async with running(create_app(settings), settings) as service:
        yield service


async def test_the_schedule_warns_of_last_months_missed_visit_without_being_asked(checking_intake):
    intake = checking_intake
    grid = "LB-XC-CG-BJ-G02"
    # Last month, relative to the clock: over on any day; BJ-H01 was monitored from its first
    # day, and nobody visited it in it.
    last_month = month_of(month_bounds(month_of(utcnow()))[0] - timedelta(days=1))
    since = month_bounds(last_month)[0].isoformat()
    assert (await _put(intake, "BJ-H01", {"grid": grid, "monitored": True, "effective_at": since}, TOWNSHIP_HEAD)).status_code == 200

    async def warned():
        found = [e for e in await _events(intake) if e.type == "grid.warning" and e.payload.period == last_month]
        return found if len(found) >= 1 else None

    await eventually(warned, what="the scheduled check's warning")
    await asyncio.sleep(3)  # more scheduled runs: the duty is still warned once
    [warning] = await warned()
    assert (warning.payload.kind, warning.payload.grid, warning.payload.subject) == ("visit_missed", grid, "BJ-H01")
    assert warning.payload.village == "LB-XC-CG-BJ"


async def test_the_register_keeps_its_history_and_a_month_is_judged_by_its_own_flags(intake):
    grid = GRID
    # CZ-K01: 困难户 from 1 August, off the list on 20 September, never visited.
    assert (await _put(intake, "CZ-K01", {"grid": grid, "difficult": True, "effective_at": "2026-08-01T09:00:00+08:00"}, COMMUNITY)).status_code == 200
    assert (await _put(intake, "CZ-K01", {"grid": grid, "keeper_id": "gw-cz-3", "difficult": True,
                                          "effective_at": "2026-08-15T09:00:00+08:00"}, TOWNSHIP_HEAD)).status_code == 200  # fmt: skip
    off = await _put(intake, "CZ-K01", {"grid": grid, "keeper_id": "gw-cz-3", "effective_at": "2026-09-20T09:00:00+08:00"}, COMMUNITY)
    assert off.status_code == 200 and off.json()["difficult"] is False
    # CZ-K02: put on the register in October as 重点监测户 — not due in August or September.
    assert (await _put(intake, "CZ-K02", {"grid": grid, "monitored": True, "effective_at": "2026-10-02T09:00:00+08:00"}, COMMUNITY)).status_code == 200
    # A change is appended, never dated before the last one.
    early = await _put(intake, "CZ-K01", {"grid": grid, "difficult": True, "effective_at": "2026-09-01T09:00:00+08:00"}, COMMUNITY)
    assert early.status_code == 422 and early.json()["errors"][0]["field"] == "effective_at", early.text
    # Saving what stands already is no change.
    same = await _put(intake, "CZ-K01", {"grid": grid, "keeper_id": "gw-cz-3"}, COMMUNITY)
    assert same.status_code == 200

    # Who changed what, when, from what to what: the township and the centre read it; another township does not.
    centre = actor_headers("xc-centre", "centre_dispatcher", "LB-XC-ZZZX")
    for who in (TOWNSHIP_HEAD, centre, COMMUNITY):
        answer = await intake.client.get("/api/v1/grid/register/CZ-K01/history", headers=who)
        assert answer.status_code == 200, (who, answer.text)
        history = answer.json()["history"]
        assert [(h["by"], h["at"][:10]) for h in history] == [("cz-staff", "2026-08-01"), ("cg-head", "2026-08-15"), ("cz-staff", "2026-09-20")]
        assert history[0]["changes"]["difficult"] == {"from": None, "to": True}
        assert history[1]["changes"] == {"keeper_id": {"from": None, "to": "gw-cz-3"}}
        assert history[2]["changes"] == {"difficult": {"from": True, "to": False}}
    for who in (FAR_TOWNSHIP_HEAD, OTHER_VILLAGE):
        assert (await intake.client.get("/api/v1/grid/register/CZ-K01/history", headers=who)).status_code == 404
    assert (await intake.client.get("/api/v1/grid/register/CZ-K01/history", headers=CLERK)).status_code == 403

    # September is judged against September's register: CZ-K01 was still 困难户 until the 20th
    # (its keeper then gw-cz-3 answers); CZ-K02 was not on the register yet.
    for month, missed in (("2026-08", ["CZ-K01"]), ("2026-09", ["CZ-K01"]), ("2026-10", ["CZ-K02"])):
        body = (await intake.client.get("/api/v1/grid/duties", params={"grid": grid, "month": month}, headers=TOWNSHIP_HEAD)).json()
        assert body["visits_missed"] == missed, (month, body)
    checked = await intake.client.post("/api/v1/grid/checks", json={"month": "2026-09"}, headers=OPS)
    mine = [(w["kind"], w["subject"], w["worker_id"]) for w in checked.json()["warnings"] if w["grid"] == grid]
    assert mine == [("visit_missed", "CZ-K01", "gw-cz-3")]
