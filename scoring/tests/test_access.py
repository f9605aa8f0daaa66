"""Who may read scores, rates and bulletins (issue #9): the units of the county and the
centres above it; another county's staff get 404, citizens and ops 403; admin by role."""

from __future__ import annotations

import pytest

from shared.actors import actor_headers
from shared.testing import AUDITOR, CENTRE, OPS

ZJJ = actor_headers("zjj", "dept_clerk", "LB-XC-ZJJ")
CHENGGUAN = actor_headers("cg", "township_head", "LB-XC-CG")
GRID = actor_headers("g", "grid_worker", "LB-XC-CG-CZ-G01")
TONGWAN = actor_headers("tw", "township_head", "LB-WX-TW")  # 武宣县's: outside 忻城县
CITY = actor_headers("city", "centre_supervisor", "LB-ZZZX")
XINGBIN = actor_headers("xb", "centre_supervisor", "LB-XB-ZZZX")
XINGBIN_DEPT = actor_headers("xb-zjj", "dept_head", "LB-XB-ZJJ")
CITIZEN = actor_headers("c", "citizen")

READS = [
    ("/api/v1/stats/units/LB-XC-ZJJ", {}),
    ("/api/v1/stats/counties/LB-XC", {}),
    ("/api/v1/scores", {"county": "LB-XC"}),
    ("/api/v1/scores/published", {"county": "LB-XC"}),
    ("/api/v1/bulletins/LB-XC/weekly", {}),
    ("/api/v1/ratings", {"unit": "LB-XC-ZJJ"}),
    ("/api/v1/grid/scores", {"county": "LB-XC"}),
]


@pytest.mark.parametrize(("path", "params"), READS)
async def test_a_countys_figures_are_read_inside_the_county_only(scoring, path, params):
    for who in (CENTRE, ZJJ, CHENGGUAN, GRID, CITY, AUDITOR):
        answer = await scoring.client.get(path, params=params, headers=who)
        assert answer.status_code == 200, (who, answer.text)
    for who in (XINGBIN, XINGBIN_DEPT, TONGWAN):
        assert (await scoring.client.get(path, params=params, headers=who)).status_code == 404, who
    for who in (CITIZEN, OPS):
        assert (await scoring.client.get(path, params=params, headers=who)).status_code == 403, who
    assert (await scoring.client.get(path, params=params)).status_code == 401


async def test_admin_and_writes_by_role(scoring):
    assert (await scoring.client.get("/api/v1/admin/rebuild", headers=ZJJ)).status_code == 403
    assert (await scoring.client.get("/api/v1/admin/rebuild", headers=OPS)).status_code == 200
    new = {"response": 1, "resolution": 1, "satisfaction": 1}
    assert (await scoring.client.post("/api/v1/weights", json=new, headers=ZJJ)).status_code == 403
    assert (await scoring.client.post("/api/v1/scores/publish", json={"county": "LB-XC"}, headers=XINGBIN)).status_code == 404
    assert (await scoring.client.post("/api/v1/grid/points", json={"points": {}, "caps": {}}, headers=TONGWAN)).status_code == 403
    assert (await scoring.client.get("/api/v1/weights", headers=CITIZEN)).status_code == 403


async def test_city_wide_rules_are_set_by_the_city_not_by_one_county(scoring):
    """One set of weights and one points table rank every county alike: a county centre's
    supervisor may not change them (403 outside-your-area); the city's supervisor may."""
    current = (await scoring.client.get("/api/v1/weights", headers=CITY)).json()
    new = {"response": 25, "resolution": 25, "satisfaction": 25, "township_rating": 25, "note": "兴宾区想改全市权重"}
    refused = await scoring.client.post("/api/v1/weights", json=new, headers=XINGBIN)
    assert refused.status_code == 403 and refused.json()["type"].endswith("/outside-your-area"), refused.text
    points = await scoring.client.post("/api/v1/grid/points", json={"points": {}, "caps": {}}, headers=XINGBIN)
    assert points.status_code == 403, points.text
    assert (await scoring.client.get("/api/v1/weights", headers=CITY)).json() == current, "nothing changed"
    made = await scoring.client.post("/api/v1/weights", json={**new, "note": "市级调整"}, headers=CITY)
    assert made.status_code == 201, made.text
