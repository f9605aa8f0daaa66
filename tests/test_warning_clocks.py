"""预警信息处置 on the same clocks as a case (issue #24 item 2), real HTTP on one lifecycle topic,
real PostgreSQL: insight opens two early warnings for the unit that handles two spots; sla runs
their 签收 and 处置 clocks on the deadlines ``warning.opened`` carries; the unit acknowledges one
in time (its clock stops); the other is left past its deadline — sla's red card
(``sla.warning_signal``) reaches the unit's head through notify, and insight shows the warning
carded and counts it.

Time: the warnings are opened now (insight stamps them); sla's now is then moved to a minute
past the carried acknowledge deadline (sla's time travel, as sla's tests control time), which
is before any threshold of the 5-working-day handle clock, on any day the test runs."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import pytest

from notify.app import create_app as notify_app
from notify.settings import NotifySettings
from services.insight.app import create_app as insight_app
from services.insight.settings import InsightSettings
from services.insight.tests.test_findings import THRESHOLDS, appeal, at
from shared.actors import actor_headers
from shared.events import EventBase, Location
from shared.testing import Infra, TopicReader, eventually, inbox_owner, publish, running, service_settings, unique
from sla.app import create_app as sla_app
from sla.tests.conftest import sla_settings

ZJJ_HEAD = actor_headers("zjj-head", "dept_head", "LB-XC-ZJJ")  # 忻城县住建局: handles the streetlamps
SLJ_HEAD = actor_headers("slj-head", "dept_head", "LB-XC-SLJ")  # another department: sees nothing
XC_CENTRE = actor_headers("xc-supervisor", "centre_supervisor", "LB-XC-ZZZX")
ADMIN = actor_headers("ops-1", "ops")
LATE_SPOT = Location(township="LB-XC-CG", village="LB-XC-CG-CZ", grid="LB-XC-CG-CZ-G02", street="土司练兵场路")
KEPT_SPOT = Location(township="LB-XC-CG", village="LB-XC-CG-CZ", grid="LB-XC-CG-CZ-G01", street="西宁街")


@pytest.fixture(scope="module")
async def services(infra: Infra):
    topic, org_topic = unique("lifecycle"), unique("org")
    configs = {
        "insight": (insight_app, service_settings(InsightSettings, infra, topic=topic, database=unique("insight"),
                                                  org_topic=org_topic, thresholds=THRESHOLDS)),
        "sla": (sla_app, sla_settings(infra, topic=topic, database=unique("sla"))),
        "notify": (notify_app, service_settings(NotifySettings, infra, topic=topic, database=unique("notify"), test_clock=True)),
    }  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        yield {name: await stack.enter_async_context(running(create(config), config)) for name, (create, config) in configs.items()}


async def test_a_warning_left_unacknowledged_is_red_carded_and_the_head_told_an_acknowledged_one_is_not(services, infra):
    insight, sla, notify = services["insight"], services["sla"], services["notify"]
    topic_name = insight.settings.kafka_topic
    async with TopicReader(infra.bootstrap_servers, topic_name) as topic:
        cases = [appeal(at(day), location=spot) for spot in (LATE_SPOT, KEPT_SPOT) for day in (16, 17, 18)]
        await publish(infra.bootstrap_servers, topic_name, *[e for _, evs in cases for e in evs])

        async def opened() -> list[EventBase] | None:
            seen = await topic.events(types="warning.opened")
            return seen if len(seen) == 2 else None

        warnings = await eventually(opened, what="two warnings opened")
        street = {h.payload.finding_id: h.payload.street for h in await topic.events(types="hotspot.detected")}  # type: ignore[attr-defined]
        by_street = {street[e.payload.finding_id]: e.payload for e in warnings}  # type: ignore[attr-defined]
        late, kept = by_street["土司练兵场路"], by_street["西宁街"]

        # sla runs both clocks of each warning on the carried deadlines, for the unit warned.
        async def clocks_of(warning_id: str, headers=ZJJ_HEAD) -> list[dict] | None:
            answer = await sla.client.get(f"/api/v1/warnings/{warning_id}/clocks", headers=headers)
            return answer.json()["clocks"] if answer.status_code == 200 else None

        for warning in (late, kept):
            clocks = await eventually(lambda w=warning: clocks_of(w.warning_id), what="the warning's clocks")
            assert {(c["kind"], c["unit"], c["round"], c["state"]) for c in clocks} == {
                ("warning_acknowledge", "LB-XC-ZJJ", 0, "running"), ("warning_handle", "LB-XC-ZJJ", 0, "running")}
            due = {c["kind"]: datetime.fromisoformat(c["due_at"]) for c in clocks}
            # The deadline travels on the event: sla never recounts it.
            assert (due["warning_acknowledge"], due["warning_handle"]) == (warning.acknowledge_due_at, warning.handle_due_at)
        assert (await sla.client.get(f"/api/v1/warnings/{late.warning_id}/clocks", headers=SLJ_HEAD)).status_code == 404

        # The unit acknowledges one warning (签收) in time, through insight; sla stops its clock.
        signed = await insight.client.post(f"/api/v1/warnings/{kept.warning_id}/acknowledge", headers=ZJJ_HEAD)
        assert signed.status_code == 200, signed.text

        async def acknowledge_stopped() -> bool:
            clocks = await clocks_of(kept.warning_id) or []
            return any(c["kind"] == "warning_acknowledge" and c["state"] == "stopped" and c["on_time"] for c in clocks)

        await eventually(acknowledge_stopped, what="the acknowledged warning's clock stopped")

        # A minute past the acknowledge deadline (the later of the two, should they differ).
        past = max(late.acknowledge_due_at, kept.acknowledge_due_at) + timedelta(minutes=1)
        assert past < min(late.handle_due_at, kept.handle_due_at) - timedelta(days=1)  # before any handle threshold
        moved = await sla.client.post("/api/v1/admin/time", json={"now": past.isoformat()}, headers=ADMIN)
        assert moved.status_code == 200, moved.text

        async def carded() -> list[EventBase] | None:
            seen = await topic.events(types="sla.warning_signal")
            return seen or None

        [card] = await eventually(carded, timeout=30, what="the red card on the late warning")
        p = card.payload  # type: ignore[attr-defined]
        assert (p.warning_id, p.clock, p.unit, p.signal, p.threshold, p.level) == (
            late.warning_id, "warning_acknowledge", "LB-XC-ZJJ", "breached", "red", "red")
        assert p.due_at == late.acknowledge_due_at and card.case_id is None

        # The head of the unit warned is told (and its duty inbox), as for a case's red card.
        async def told(recipient: str) -> list[str] | None:
            # The appeals' own clocks (November's, long past) card and urge too: read the whole inbox.
            answer = await notify.client.get(f"/api/v1/inbox/{recipient}", params={"limit": 500}, headers=inbox_owner(recipient))
            assert answer.status_code == 200, answer.text
            texts = [item["text"] for item in answer.json()["items"] if "未按时签收" in item["text"]]
            return texts or None

        [head_text] = await eventually(lambda: told("unit:LB-XC-ZJJ:head"), what="the head told of the red card")
        assert late.warning_id in head_text and kept.warning_id not in head_text
        assert await eventually(lambda: told("unit:LB-XC-ZJJ:duty"), what="the duty inbox told")

        # Insight shows the warning carded; the acknowledged one is not; the figure counts it.
        async def shown() -> dict | None:
            listed = (await insight.client.get("/api/v1/warnings", headers=XC_CENTRE)).json()["items"]
            cards = {w["warning_id"]: w["card"] for w in listed}
            return cards if cards.get(late.warning_id) == "red" else None

        cards = await eventually(shown, what="insight shows the red card")
        assert cards[kept.warning_id] is None
        day = card.occurred_at.date().isoformat()
        opened_day = min(late.acknowledge_due_at, kept.acknowledge_due_at) - timedelta(days=20)
        figures = await insight.client.get(
            "/api/v1/warning-figures", params={"since": opened_day.date().isoformat(), "until": day}, headers=XC_CENTRE
        )
        assert figures.status_code == 200, figures.text
        [figure] = figures.json()["items"]
        assert (figure["received"], figure["carded"], figure["carded_rate"]) == (2, 1, 50.0)

        # Only the late warning's clock was carded: the acknowledged one fired nothing.
        clocks = await clocks_of(kept.warning_id) or []
        assert all(c["signals_fired"] == [] for c in clocks)
        late_clocks = {c["kind"]: c for c in await clocks_of(late.warning_id) or []}
        assert late_clocks["warning_acknowledge"]["state"] == "breached"
        assert late_clocks["warning_acknowledge"]["signals_fired"] == ["red"]
