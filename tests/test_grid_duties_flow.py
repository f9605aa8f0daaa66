"""Grid duties across services (issue #23 item 7), real HTTP on one lifecycle topic:
a grid worker's visits, mailbox openings and proxy services at intake count in scoring's
monthly grid score (points version 2); the monthly check's warnings for missed duties reach
notify's inboxes of the grid and of its village or community, and no other unit's.

Dates are pinned in September 2026, a month over on any day these tests run."""

from __future__ import annotations

import contextlib

import pytest

from intake.app import create_app as intake_app
from intake.settings import IntakeSettings
from notify.app import create_app as notify_app
from notify.settings import NotifySettings
from scoring.app import create_app as scoring_app
from scoring.settings import ScoringSettings
from shared.actors import actor_headers
from shared.testing import OPS, Infra, eventually, inbox_owner, running, service_settings, unique

GRID = "LB-XC-CG-CX-G01"  # 城关镇 城西社区's first grid
COMMUNITY_UNIT = "LB-XC-CG-CX"
WORKER = actor_headers("gw-cx-1", "grid_worker", GRID)
COMMUNITY = actor_headers("cx-staff", "village_staff", COMMUNITY_UNIT)
XC_CENTRE = actor_headers("xc-dispatcher", "centre_dispatcher", "LB-XC-ZZZX")


@pytest.fixture(scope="module")
async def services(infra: Infra, tmp_path_factory):
    topic, org_topic = unique("lifecycle"), unique("org")
    configs = {
        "intake": (intake_app, service_settings(IntakeSettings, infra, topic=topic, database=unique("intake"), org_topic=org_topic,
                                                attachment_dir=tmp_path_factory.mktemp("attachments"))),
        "scoring": (scoring_app, service_settings(ScoringSettings, infra, topic=topic, database=unique("scoring"))),
        "notify": (notify_app, service_settings(NotifySettings, infra, topic=topic, database=unique("notify"), test_clock=True)),
    }  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        yield {name: await stack.enter_async_context(running(create(config), config)) for name, (create, config) in configs.items()}


async def test_grid_duties_score_and_missed_ones_reach_the_grid_and_its_community(services):
    intake, scoring, notify = services["intake"], services["scoring"], services["notify"]
    for ref, flags in (("CX-H01", {"difficult": True}), ("CX-H02", {"monitored": True})):
        answer = await intake.client.put(f"/api/v1/grid/register/{ref}", json={"grid": GRID, **flags, "effective_at": "2026-09-01T08:00:00+08:00"}, headers=COMMUNITY)
        assert answer.status_code == 200, answer.text
    assert (await intake.client.put(f"/api/v1/grid/mailbox/schedules/{GRID}", json={"weekdays": [4]}, headers=COMMUNITY)).status_code == 200
    for day in ("10", "24"):  # two visits to CX-H01; CX-H02 never visited in September
        visit = {"household_ref": "CX-H01", "visited_at": f"2026-09-{day}T10:00:00+08:00"}
        assert (await intake.client.post("/api/v1/grid/visits", json=visit, headers=WORKER)).status_code == 201
    for day in ("03", "10", "17"):  # Thursdays; the 24th is missed
        opening = {"opened_at": f"2026-09-{day}T09:00:00+08:00", "letters": 1}
        assert (await intake.client.post("/api/v1/grid/mailbox/openings", json=opening, headers=WORKER)).status_code == 201
    service = {"item": "LIC-01", "done_at": "2026-09-11T15:00:00+08:00"}
    assert (await intake.client.post("/api/v1/grid/services", json=service, headers=WORKER)).status_code == 201

    # Scoring: 2 visits × 4 + 3 openings × 2 + 1 proxy service × 6 = 20 points under version 2.
    async def scored():
        body = (await scoring.client.get("/api/v1/grid/scores", params={"month": "2026-09", "county": "LB-XC"}, headers=XC_CENTRE)).json()
        worker = next((w for w in body["workers"] if w["worker_id"] == "gw-cx-1"), None)
        return (body, worker) if worker and worker["total"] == 20 else None

    body, worker = await eventually(scored, what="the grid duties scored")
    assert body["points_version"] == 2
    assert worker["points"] == {"visit": 8, "mailbox_opened": 6, "proxy_service": 6}

    checked = await intake.client.post("/api/v1/grid/checks", json={"month": "2026-09"}, headers=OPS)
    assert checked.status_code == 200, checked.text
    assert {(w["kind"], w["subject"]) for w in checked.json()["warnings"]} == {
        ("visit_missed", "CX-H02"), ("mailbox_missed", "2026-09-24")}

    # The grid's inbox is read by its worker, the community's by its staff.
    readers = {f"unit:{GRID}:duty": WORKER, f"unit:{COMMUNITY_UNIT}:duty": COMMUNITY}

    async def inbox(recipient: str) -> list[str]:
        answer = await notify.client.get(f"/api/v1/inbox/{recipient}", headers=readers.get(recipient) or inbox_owner(recipient))
        assert answer.status_code == 200, answer.text
        return [item["text"] for item in answer.json()["items"]]

    for recipient in (f"unit:{GRID}:duty", f"unit:{COMMUNITY_UNIT}:duty"):
        texts = await eventually(lambda r=recipient: _both(inbox, r), what=f"both warnings in {recipient}")
        assert any("CX-H02" in t and "2026-09" in t for t in texts) and any("2026-09-24" in t for t in texts)
    # Not told to the township or another grid: the grid and its community answer for it.
    assert await inbox("unit:LB-XC-CG:duty") == [] and await inbox("unit:LB-XC-CG-CX-G02:duty") == []


async def _both(inbox, recipient: str) -> list[str] | None:
    texts = await inbox(recipient)
    return texts if len(texts) >= 2 else None
