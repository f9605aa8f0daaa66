"""Who may do what, from one table (issue #20): ``shared/permissions.py``.

- the README prints exactly the table the code enforces;
- every state-changing route of every service consults its entry (or is open on purpose,
  or signed by a machine client), and every entry names a route that exists;
- through HTTP against the six running services: every role the table does not allow is
  refused on every state-changing route, acting from 通挽镇 as the probe did;
- the findings of the probe, each through HTTP: a township calling units of another county,
  manual triage to a township that does not exist or is another county's, directory edits
  outside the editor's part of the tree.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from dispatch.app import create_app as dispatch_app
from dispatch.settings import DispatchSettings
from dispatch.tests.helpers import GUARDRAIL, file_case, reported_up
from intake.app import create_app as intake_app
from intake.settings import IntakeSettings
from notify.app import create_app as notify_app
from notify.settings import NotifySettings
from scoring.app import create_app as scoring_app
from services.insight.app import create_app as insight_app
from services.insight.settings import InsightSettings
from scoring.settings import ScoringSettings
from services.directory.app import create_app as directory_app
from services.directory.settings import DirectorySettings
from services.insight.app import create_app as insight_app
from services.insight.settings import InsightSettings
from shared.actors import actor_headers
from shared.events import Role
from shared.permissions import PERMISSIONS, readme_block, render_markdown
from shared.testing import AUDITOR, Infra, eventually, running, service_settings, unique
from sla.app import create_app as sla_app
from sla.settings import SlaSettings
from tests.test_route_guards import OPEN_ON_PURPOSE, SERVICES, api_routes

ROOT = Path(__file__).resolve().parent.parent
MACHINE_SIGNED = {"signed_client", "signed_gateway"}
TONGWAN = "LB-WX-TW"


# --------------------------------------------------------------------------- the table itself


def test_the_readme_prints_the_table_the_code_enforces():
    block = readme_block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert block is not None, "README.md lost its generated permissions block"
    assert block == render_markdown(), "README's table differs from shared/permissions.py: run python -m shared.permissions --write README.md"


def _dependencies(dependant) -> list:
    out = []
    for sub in dependant.dependencies:
        out.append(sub.call)
        out.extend(_dependencies(sub))
    return out


def _state_changing_routes():
    import importlib

    for service, module in SERVICES.items():
        app = importlib.import_module(module).create_app()
        for route in api_routes(app.routes):
            for method in route.methods - {"GET", "HEAD"}:
                yield service, method, route.path, _dependencies(route.dependant)


def test_every_state_changing_route_consults_its_entry_of_the_table():
    consulted, unaccounted = {}, []
    for service, method, path, calls in _state_changing_routes():
        actions = [call.action for call in calls if hasattr(call, "action")]
        names = {getattr(call, "__name__", "") for call in calls}
        if actions:
            [action] = actions
            consulted[action] = (service, method, path)
        elif (service, method, path) not in OPEN_ON_PURPOSE and not names & MACHINE_SIGNED:
            unaccounted.append(f"{service} {method} {path}")
    assert unaccounted == [], "state-changing routes that consult no entry of shared/permissions.py"
    assert consulted == {action: (p.service, p.method, p.path) for action, p in PERMISSIONS.items()}


# --------------------------------------------------------------------------- the six services, running


@pytest.fixture(scope="module")
async def platform(infra: Infra, tmp_path_factory):
    """Every service with a state-changing route, on one lifecycle topic (real HTTP)."""
    topic, org_topic = unique("lifecycle"), unique("org")
    settings = {
        "intake": (intake_app, service_settings(
            IntakeSettings, infra, topic=topic, database=unique("intake"), org_topic=org_topic,
            attachment_dir=tmp_path_factory.mktemp("attachments"),
        )),
        "dispatch": (dispatch_app, service_settings(DispatchSettings, infra, topic=topic, database=unique("dispatch"), org_topic=org_topic)),
        "sla": (sla_app, service_settings(SlaSettings, infra, topic=topic, database=unique("sla"), time_travel=True)),
        "scoring": (scoring_app, service_settings(ScoringSettings, infra, topic=topic, database=unique("scoring"))),
        "notify": (notify_app, service_settings(NotifySettings, infra, topic=topic, database=unique("notify"), test_clock=True)),
        "directory": (directory_app, service_settings(DirectorySettings, infra, topic=topic, database=unique("directory"), org_topic=org_topic)),
        "insight": (insight_app, service_settings(InsightSettings, infra, topic=topic, database=unique("insight"), org_topic=org_topic)),
    }  # fmt: skip
    import contextlib

    async with contextlib.AsyncExitStack() as stack:
        running_services = {}
        for name, (create, config) in settings.items():
            running_services[name] = await stack.enter_async_context(running(create(config), config))
        yield running_services


PATH_VALUES = {
    "case_id": str(uuid.uuid4()), "order_no": "ORD-NONE", "request_id": "EXT-NONE", "year": "2026", "task_id": "1",
    "recipient": f"unit:{TONGWAN}:duty", "message_id": "1", "code": "LB-WX-TW-DT", "user_id": "demo-village-staff",
    "household_ref": "H-NONE", "grid": "LB-WX-TW-DT-G01", "warning_id": "W-NONE",
}  # fmt: skip


def _url(path: str) -> str:
    return path.format(**PATH_VALUES)


async def test_every_role_the_table_does_not_allow_is_refused_on_every_route(platform):
    """Each role, acting from 通挽镇 as the probe did, on every route it is not in the table
    for: refused (403 naming the roles that may, or 404), never carried out."""
    carried_out = []
    for action, permission in PERMISSIONS.items():
        client = platform[permission.service].client
        for role in Role:
            if role is Role.system or role in permission.roles:
                continue
            headers = actor_headers(f"probe-{role.value}", role, TONGWAN)
            answer = await client.request(permission.method, _url(permission.path), json={}, headers=headers)
            if answer.status_code not in (403, 404):
                carried_out.append((action, role.value, answer.status_code))
    assert carried_out == []


# --------------------------------------------------------------------------- 乡呼县应 stays in the county


async def _tongwan_case(dispatch, *, triage: bool = True) -> str:
    case_id = await file_case(dispatch, GUARDRAIL, triage=triage)  # 通挽镇江龙村: the catalogue leaves it to the village first

    async def known():
        answer = await dispatch.client.get(f"/api/v1/cases/{case_id}/status", headers=AUDITOR)
        return answer.status_code == 200 and answer.json()["events_applied"] >= (3 if triage else 2)

    await eventually(known, what="dispatch to learn of the case")
    return case_id


STAFF_TONGWAN = actor_headers("demo-township-staff", Role.township_staff, TONGWAN)
WX_CENTRE = actor_headers("demo-centre-dispatcher-wx", Role.centre_dispatcher, "LB-WX-ZZZX")  # 通挽镇 is 武宣县's


async def test_a_township_calls_only_its_own_county_and_the_units_the_catalogue_names(platform):
    dispatch = platform["dispatch"]
    case_id = await _tongwan_case(dispatch)
    call = {"reason": "需要县里协调", "units": ["LB-XB-ZJJ", "LB-WX-WX", "LB-ZZZX"]}
    refused = await dispatch.client.post(f"/api/v1/cases/{case_id}/call", json=call, headers=STAFF_TONGWAN)
    assert refused.status_code == 422, refused.text
    assert (refused.json()["field"], refused.json()["unit"]) == ("units[0]", "LB-XB-ZJJ")
    for units, field in ((["LB-WX-ZJJ", "LB-WX-WX"], "units[1]"), (["LB-XC-ZJJ"], "units[0]"), (["LB-ZZZX"], "units[0]")):
        refused = await dispatch.client.post(f"/api/v1/cases/{case_id}/call", json={**call, "units": units}, headers=STAFF_TONGWAN)
        assert (refused.status_code, refused.json().get("field")) == (422, field), refused.text
    whistle = {**call, "units": ["LB-WX-ZJJ"], "lead_unit": "LB-XB-ZJJ"}
    refused = await dispatch.client.post(f"/api/v1/cases/{case_id}/call", json=whistle, headers=STAFF_TONGWAN)
    assert (refused.status_code, refused.json().get("field")) == (422, "lead_unit"), refused.text
    # Nothing landed in another county's queue.
    queue = await dispatch.client.get("/api/v1/units/LB-XB-ZJJ/orders", headers=AUDITOR)
    assert queue.status_code == 200 and queue.json()["items"] == []
    # Its own county's departments it calls, once 江龙村 has reported the case up (上报).
    await reported_up(dispatch, case_id)
    called = await dispatch.client.post(
        f"/api/v1/cases/{case_id}/call", json={**call, "units": ["LB-WX-ZJJ", "LB-WX-SLJ"]}, headers=STAFF_TONGWAN
    )
    assert called.status_code == 201, called.text


async def test_acting_from_a_township_unit_does_not_make_any_role_its_staff(platform):
    dispatch = platform["dispatch"]
    case_id = await _tongwan_case(dispatch)
    call = {"reason": "需要县里协调", "units": ["LB-WX-ZJJ"]}
    for role in (Role.ops, Role.auditor, Role.citizen, Role.dept_clerk):
        answer = await dispatch.client.post(f"/api/v1/cases/{case_id}/call", json=call, headers=actor_headers(f"x-{role.value}", role, TONGWAN))
        assert answer.status_code == 403, (role, answer.text)
    verified = await dispatch.client.post(
        f"/api/v1/cases/{case_id}/verify", json={"passed": True}, headers=actor_headers("x-ops", Role.ops, TONGWAN)
    )
    assert verified.status_code == 403, verified.text


async def test_a_centre_dispatches_by_hand_only_inside_its_area(platform):
    dispatch = platform["dispatch"]
    case_id = await _tongwan_case(dispatch, triage=False)  # untriaged: waits for the centre to dispatch it by hand
    refused = await dispatch.client.post(f"/api/v1/cases/{case_id}/dispatch", json={"unit": "LB-XB-ZJJ"}, headers=WX_CENTRE)
    assert (refused.status_code, refused.json().get("field")) == (422, "unit"), refused.text
    made = await dispatch.client.post(f"/api/v1/cases/{case_id}/dispatch", json={"unit": "LB-WX-ZJJ"}, headers=WX_CENTRE)
    assert made.status_code == 201, made.text


# --------------------------------------------------------------------------- manual triage


async def test_manual_triage_names_a_township_of_the_directory_inside_the_centres_county(platform):
    intake = platform["intake"]
    appeal = {"title": "有个事情", "description": "请联系我", "channel": "app",
              "contact": {"name": "韦先生", "phone": "13812348001"}}  # fmt: skip
    created = await intake.client.post("/api/v1/appeals", json=appeal)
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "triage"
    case_id = created.json()["case_id"]
    triage = {"category": "烦心事", "subject_class": "disputes", "urgency": "normal"}
    for place, field in (({"township": "NO-SUCH-TOWN"}, "township"), ({"township": "LB-XB-QJ"}, "township"),
                         ({"township": "LB-XC-CG"}, "township"),  # 忻城县's: not this centre's county
                         ({"township": "LB-XC-CG-CD"}, "township"),
                         ({"township": TONGWAN, "village": "LB-XC-CG-CD"}, "village"),
                         ({"township": TONGWAN, "village": "LB-WX-TW-DT", "grid": "LB-WX-TW-LN-G01"}, "grid")):  # fmt: skip
        refused = await intake.client.post(f"/api/v1/appeals/{case_id}/triage", json={**triage, **place}, headers=WX_CENTRE)
        assert (refused.status_code, refused.json().get("field")) == (422, field), (place, refused.text)
    # Still in the centre's triage queue, untouched.
    view = (await intake.client.get(f"/api/v1/appeals/{case_id}", headers=WX_CENTRE)).json()
    assert (view["status"], view["township"]) == ("triage", None)
    placed = {**triage, "township": TONGWAN, "village": "LB-WX-TW-DT", "grid": "LB-WX-TW-DT-G01"}
    answer = await intake.client.post(f"/api/v1/appeals/{case_id}/triage", json=placed, headers=WX_CENTRE)
    assert answer.status_code == 200, answer.text


# --------------------------------------------------------------------------- directory edits


XC_SUPERVISOR = actor_headers("sup-xc", Role.centre_supervisor, "LB-XC-ZZZX")
CITY_SUPERVISOR = actor_headers("sup-city", Role.centre_supervisor, "LB-ZZZX")
OPS = actor_headers("ops-1", Role.ops)


async def test_directory_edits_stay_in_the_editors_part_of_the_tree(platform):
    directory = platform["directory"]
    longgang = {"name": "龙岗村", "kind": "village", "parent": "LB-XC-CG"}
    moved = await directory.client.put("/api/v1/units/LB-XB-QJ-LG", json=longgang, headers=XC_SUPERVISOR)
    assert (moved.status_code, moved.json()["type"].rsplit("/", 1)[1]) == (403, "outside-your-area"), moved.text
    # Nor into another county, nor a new unit there.
    out = await directory.client.put("/api/v1/units/LB-XC-CG-CD", json={"name": "城东社区", "kind": "village", "parent": "LB-XB-QJ"},
                                     headers=XC_SUPERVISOR)  # fmt: skip
    assert out.status_code == 403, out.text
    city_supervisor = {"name": "市综治中心督查员", "role": "centre_supervisor", "unit": "LB-ZZZX"}
    for headers in (OPS, XC_SUPERVISOR):
        made = await directory.client.put("/api/v1/users/probe-city-sup", json=city_supervisor, headers=headers)
        assert made.status_code == 403, made.text
    auditor = await directory.client.put("/api/v1/users/probe-auditor", json={"name": "审计", "role": "auditor", "unit": "LB-XC"},
                                         headers=XC_SUPERVISOR)  # fmt: skip
    assert auditor.status_code == 403, auditor.text
    other_line = {"subject_class": "housing", "area": "LB-XB", "owner": "LB-XB-MZJ", "matter": "改"}
    catalogue = (await directory.client.get("/api/v1/catalogue")).json()["entries"]
    changed = [other_line if (e["subject_class"], e["area"]) == ("housing", "LB-XB") else e for e in catalogue]
    refused = await directory.client.put("/api/v1/catalogue", json={"entries": changed}, headers=XC_SUPERVISOR)
    assert refused.status_code == 403, refused.text
    # Inside its own county it edits; the city's administrators edit the whole city.
    inside = await directory.client.put("/api/v1/units/LB-XC-CG-XJ", json={"name": "新街社区", "kind": "village", "parent": "LB-XC-CG"},
                                        headers=XC_SUPERVISOR)  # fmt: skip
    assert inside.status_code == 201, inside.text
    staff = await directory.client.put("/api/v1/users/probe-xj", json={"name": "新街社区干部", "role": "village_staff", "unit": "LB-XC-CG-XJ"},
                                       headers=XC_SUPERVISOR)  # fmt: skip
    assert staff.status_code == 201, staff.text
    city = await directory.client.put("/api/v1/units/LB-XB-QJ-LG", json=longgang, headers=CITY_SUPERVISOR)
    assert city.status_code == 200, city.text
