"""Grid workers: reports solved on the spot are closed at grid level and counted; patrols,
household updates and logins become grid-activity events for scoring."""

from aiokafka import AIOKafkaConsumer

from shared.cloudevents import from_message
from shared.testing import AUDITOR, eventually

WORKER = "demo-grid-worker-cz"
GRID = "LB-XC-CG-CZ-G01"
AS_WORKER = {"X-Actor-Id": WORKER, "X-Actor-Role": "grid_worker", "X-Actor-Unit": GRID}


async def _events(intake) -> list:
    await intake.runtime.relay.flush()
    consumer = AIOKafkaConsumer(
        intake.settings.kafka_topic, bootstrap_servers=intake.settings.kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=3000, max_records=100_000)
    finally:
        await consumer.stop()
    return [from_message(m.value, m.headers) for ms in batch.values() for m in ms]


async def test_a_matter_solved_on_the_spot_is_recorded_closed_and_counted(intake):
    body = {
        "title": "路边垃圾堆放", "description": "城中社区路边有垃圾堆放，已叫保洁清理完毕。", "channel": "grid",
        "contact": {"name": "网格员小潘", "phone": "13800000001"}, "location": {"address": "忻城县城关镇城中社区"},
        "reporter_id": WORKER, "solved_on_spot": True,
    }
    # Only the worker, signed in, may file a report that counts for them and closes itself.
    for who in ({}, {"X-Actor-Id": "c", "X-Actor-Role": "citizen"}, {**AS_WORKER, "X-Actor-Id": "another-worker"}):
        refused = await intake.client.post("/api/v1/appeals", json=body, headers=who)
        assert refused.status_code in (401, 403), (who, refused.text)
    created = (await intake.client.post("/api/v1/appeals", json=body, headers=AS_WORKER)).json()
    assert created["status"] == "closed"
    mine = [e for e in await _events(intake) if e.case_id == created["case_id"]]
    types = [e.type for e in mine]
    assert types[:2] == ["case.received", "case.accepted"]
    assert {"grid.activity", "case.resolved", "case.closed"} <= set(types)
    activity = next(e for e in mine if e.type == "grid.activity")
    assert (activity.payload.worker_id, activity.payload.kind) == (WORKER, "solved_on_spot")

    async def timeline_shows_closed():
        view = (await intake.client.get(f"/api/v1/appeals/{created['case_id']}", headers=AUDITOR)).json()
        return "case.closed" in [t["type"] for t in view["timeline"]]

    await eventually(timeline_shows_closed, what="the citizen's timeline to show it closed")


async def test_patrols_household_updates_and_logins_are_grid_activity(intake):
    patrol = {
        "started_at": "2026-11-20T08:00:00+08:00", "ended_at": "2026-11-20T09:30:00+08:00",
        "route": [[24.060, 108.650], [24.061, 108.650], [24.061, 108.651]],
    }
    answer = await intake.client.post("/api/v1/grid/patrols", json=patrol, headers=AS_WORKER)
    assert answer.status_code == 201, answer.text
    detail = answer.json()["detail"]
    assert detail["minutes"] == 90.0 and 200 < detail["distance_m"] < 230
    household = {"household_ref": "H-0007", "fields": ["members"]}
    assert (await intake.client.post("/api/v1/grid/households", json=household, headers=AS_WORKER)).status_code == 201
    assert (await intake.client.post("/api/v1/grid/logins", headers=AS_WORKER)).status_code == 201
    kinds = {e.payload.kind for e in await _events(intake) if e.type == "grid.activity" and e.payload.grid == GRID}
    assert {"patrol", "info_update", "login"} <= kinds

    backwards = {**patrol, "ended_at": "2026-11-20T07:00:00+08:00"}
    refused = await intake.client.post("/api/v1/grid/patrols", json=backwards, headers=AS_WORKER)
    assert refused.status_code == 422 and "ended_at" in refused.text


async def test_grid_work_is_logged_by_the_signed_in_worker_for_their_own_grid(intake):
    clerk = {"X-Actor-Id": "clerk", "X-Actor-Role": "dept_clerk", "X-Actor-Unit": "LB-XC-ZJJ"}
    assert (await intake.client.post("/api/v1/grid/logins", headers=clerk)).status_code == 403
    no_grid = {"X-Actor-Id": WORKER, "X-Actor-Role": "grid_worker", "X-Actor-Unit": "LB-XC-CG"}  # a township, not a grid
    assert (await intake.client.post("/api/v1/grid/logins", headers=no_grid)).status_code == 403
    assert (await intake.client.post("/api/v1/grid/logins")).status_code == 401
    # A body naming another worker and grid changes nothing: the event carries who signed in.
    spoof = {"household_ref": "H-0099", "fields": ["phone"], "worker_id": "someone-else", "grid": "LB-WX-TW-DT-G01"}
    answer = await intake.client.post("/api/v1/grid/households", json=spoof, headers=AS_WORKER)
    assert answer.status_code == 201
    [event] = [e for e in await _events(intake) if str(e.id) == answer.json()["event_id"]]
    assert (event.payload.worker_id, event.payload.grid) == (WORKER, GRID)
