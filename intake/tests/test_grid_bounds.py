"""A grid worker's report counts only inside their own township, and a patrol has a
plausible length (issue #20): 城关镇's worker cannot close a 通挽镇 matter on the spot and
earn its points, and a 65,000 km patrol is refused."""

from __future__ import annotations

from intake.tests.test_grid import AS_WORKER, WORKER, _events

OTHER_TOWNSHIP = {"address": "武宣县通挽镇通挽社区"}
OWN_TOWNSHIP = {"address": "忻城县城关镇城中社区"}


def _report(location: dict, *, solved: bool, title: str) -> dict:
    return {
        "title": title, "description": f"{title}，已现场处理完毕。", "channel": "grid",
        "contact": {"name": "网格员覃某", "phone": "13800000001"}, "location": location,
        "reporter_id": WORKER, "solved_on_spot": solved,
    }  # fmt: skip


async def test_a_report_from_another_township_is_refused_and_earns_nothing(intake):
    titles = []
    for location in (OTHER_TOWNSHIP, {"lat": 23.530, "lng": 109.429}):
        for solved in (True, False):
            title = f"路边垃圾堆放{len(titles)}号"
            titles.append(title)
            refused = await intake.client.post("/api/v1/appeals", json=_report(location, solved=solved, title=title), headers=AS_WORKER)
            assert refused.status_code == 422, (location, solved, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert [e["field"] for e in refused.json()["errors"]] == ["location"]
    nowhere = await intake.client.post("/api/v1/appeals", json=_report({"address": "某处"}, solved=True, title="无处可寻"),
                                       headers=AS_WORKER)  # fmt: skip
    assert nowhere.status_code == 422 and nowhere.json()["errors"][0]["field"] == "location", nowhere.text
    own = await intake.client.post("/api/v1/appeals", json=_report(OWN_TOWNSHIP, solved=True, title="城中社区垃圾"), headers=AS_WORKER)
    assert own.status_code == 201 and own.json()["status"] == "closed", own.text
    events = await _events(intake)
    received = [e for e in events if e.type == "case.received" and e.payload.title in titles]
    assert received == [], "nothing of the refused reports was filed"
    activity = [e for e in events if e.type == "grid.activity" and e.payload.detail.get("case_id") == own.json()["case_id"]]
    assert [(e.payload.worker_id, e.payload.kind) for e in activity] == [(WORKER, "solved_on_spot")]


async def test_a_patrol_longer_than_one_day_can_cover_is_refused(intake):
    base = {"started_at": "2026-11-20T08:00:00+08:00", "ended_at": "2026-11-20T17:00:00+08:00"}
    # Across the globe and back, three times: some 60,000 km.
    far = {**base, "route": [[24.06, 108.65], [-24.06, -71.35], [24.06, 108.65], [-24.06, -71.35]]}
    refused = await intake.client.post("/api/v1/grid/patrols", json=far, headers=AS_WORKER)
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["route"]
    # A long but real day's round (about 99 km, up and down 城关镇) is still a patrol.
    long_day = {**base, "route": [[24.06, 108.65], [24.06 + 0.445, 108.65]] * 1 + [[24.06, 108.65]]}
    accepted = await intake.client.post("/api/v1/grid/patrols", json=long_day, headers=AS_WORKER)
    assert accepted.status_code == 201, accepted.text
    assert 95_000 < accepted.json()["detail"]["distance_m"] <= 100_000
