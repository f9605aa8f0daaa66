"""Who may read which clocks (issue #9): a case's clocks by its org scope, a unit's lists by
the unit and those above it, the board filtered to what the caller may see; 404, not 403."""

from shared.actors import actor_headers
from shared.events import Location, TriagedData
from shared.testing import AUDITOR, CENTRE, eventually, publish, unique
from sla.tests.events import UNIT, _event, accepted, bj, dispatched, received
from sla.tests.test_clocks import sla  # noqa: F401  (the module's running sla)
from shared.events import CaseTriaged, FiveMatters

CHENGGUAN = actor_headers("cg", "township_staff", "LB-XC-CG")
TONGWAN = actor_headers("tw", "township_head", "LB-WX-TW")
ZJJ = actor_headers("zjj", "dept_clerk", UNIT)
JTJ = actor_headers("jtj", "dept_head", "LB-XC-JTJ")
XINGBIN = actor_headers("xb", "centre_supervisor", "LB-XB-ZZZX")
OPS = actor_headers("ops", "ops")


def triaged_in_chengguan(case_id: str, at):
    place = Location(township="LB-XC-CG", village="LB-XC-CG-CZ")
    data = TriagedData(category=FiveMatters.annoyance, subject_class="streetlight", confidence=0.9, region="LB-XC", location=place)
    return _event(CaseTriaged, case_id, at, data, "intake")


async def test_clocks_are_seen_by_the_case_area_and_its_units_only(sla, infra):
    case = unique("case")
    now = bj(2026, 11, 30, 9)
    await publish(infra.bootstrap_servers, sla.settings.kafka_topic, received(case, now), accepted(case, now), triaged_in_chengguan(case, now), dispatched(case, now))

    async def clocks_seen():
        answer = await sla.client.get(f"/api/v1/cases/{case}/clocks", headers=AUDITOR)
        return answer.status_code == 200 and any(c["unit"] == UNIT for c in answer.json()["clocks"])

    await eventually(clocks_seen, what="the case's clocks")
    for who in (CENTRE, CHENGGUAN, ZJJ, AUDITOR):
        assert (await sla.client.get(f"/api/v1/cases/{case}/clocks", headers=who)).status_code == 200, who
    for who in (TONGWAN, JTJ, XINGBIN, OPS):
        assert (await sla.client.get(f"/api/v1/cases/{case}/clocks", headers=who)).status_code == 404, who
    assert (await sla.client.get(f"/api/v1/cases/{case}/clocks")).status_code == 401

    # A unit's lists: itself and the county's centre; not another department or county.
    for who, code in ((ZJJ, 200), (CENTRE, 200), (JTJ, 404), (XINGBIN, 404), (CHENGGUAN, 404)):
        assert (await sla.client.get(f"/api/v1/units/{UNIT}/clocks", headers=who)).status_code == code, who

    # The board: a department sees only its own row; another county's centre none of 忻城's.
    own = (await sla.client.get("/api/v1/board", headers=ZJJ)).json()["units"]
    assert own and {row["unit"] for row in own} == {UNIT}
    assert all(not row["unit"].startswith("LB-XC") for row in (await sla.client.get("/api/v1/board", headers=XINGBIN)).json()["units"])
    refused = await sla.client.get("/api/v1/board", headers=OPS)
    assert refused.status_code == 403


async def test_a_clerk_may_not_write_policies(sla):
    policy = {"policy_id": unique("p"), "limits": {"sign_minutes": 45}}
    assert (await sla.client.post("/api/v1/policies", json=policy, headers=ZJJ)).status_code == 403
    assert (await sla.client.get("/api/v1/policies", headers=ZJJ)).status_code == 200


async def test_time_travel_and_policy_limits_are_bounded(sla):
    # Found by fuzzing: a huge jump or limit overflowed Python's timedelta and broke every later request.
    ADMIN = actor_headers("sup", "centre_supervisor", "LB-XC-ZZZX")
    far = await sla.client.post("/api/v1/admin/time", json={"advance_seconds": 1e16}, headers=ADMIN)
    assert far.status_code == 422
    huge = {"policy_id": unique("p"), "limits": {"verify_working_days": 2.6e45}}
    assert (await sla.client.post("/api/v1/policies", json=huge, headers=ADMIN)).status_code == 422
    assert (await sla.client.get("/api/v1/policies", headers=ADMIN)).status_code == 200
    assert (await sla.client.get("/api/v1/policies/x", params={"version": 2**40}, headers=ADMIN)).status_code == 422


async def test_a_county_supervisor_sets_policies_for_its_own_county_only(sla):
    """A county centre's supervisor writes SLA policies for a region in its county; another
    county's region, a city-wide policy and the national holiday schedule are the city's."""
    xincheng = actor_headers("sup-xc", "centre_supervisor", "LB-XC-ZZZX")
    city = actor_headers("sup-city", "centre_supervisor", "LB-ZZZX")
    limits = {"verify_working_days": 3}
    own = await sla.client.post("/api/v1/policies", json={"policy_id": unique("p"), "region": "LB-XC", "limits": limits}, headers=xincheng)
    assert own.status_code == 201, own.text
    for region in ("LB-XB", None):
        other = await sla.client.post("/api/v1/policies", json={"policy_id": unique("p"), "region": region, "limits": limits}, headers=xincheng)
        assert other.status_code == 403 and other.json()["type"].endswith("/outside-your-area"), (region, other.text)
    anywhere = await sla.client.post("/api/v1/policies", json={"policy_id": unique("p"), "region": "LB-XB", "limits": limits}, headers=city)
    assert anywhere.status_code == 201, anywhere.text
