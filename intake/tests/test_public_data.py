"""What the public feed and read-only staff are shown (issue #20): accepted appeals only, free
text with personal data masked, points rounded — through HTTP against the running service."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from intake.app import create_app
from shared.ports import free_port
from shared.testing import AUDITOR, CENTRE, running

from intake.tests.test_intake_api import STREETLAMP, post

# The appeal, as filed: a name, a phone, an ID number and a door, with an exact point.
FILED = (
    "我是张三，电话13912345678，身份证450121199001011234，住西宁街12号3单元501，"
    "城中社区村口的路灯坏了三天，晚上很黑。"
)
PUBLISHED = (
    "我是张*，电话139****5678，身份证450121********1234，住西宁街**号**单元**，"
    "城中社区村口的路灯坏了三天，晚上很黑。"
)
SECRETS = ("13912345678", "450121199001011234", "张三", "路12号", "单元501", "24.0681234", "108.6614321", "韦先生", "13812348000")
PERSONAL = {
    **STREETLAMP,
    "title": "城关镇路灯坏了 请联系13912345678",
    "description": FILED,
    "location": {"address": "忻城县城关镇城中社区西宁街12号3单元501", "lat": 24.0681234, "lng": 108.6614321},
}


@pytest.fixture(scope="module")
async def filed(intake):
    """One appeal of each kind: published (accepted and placed), waiting for manual triage,
    declined, merged into the first."""
    published = (await post(intake, PERSONAL)).json()
    waiting = (await post(intake, {**STREETLAMP, "title": "有个事情", "description": "我是李四，请联系我", "location": None})).json()
    declined = (await post(intake, {**STREETLAMP, "title": "工资纠纷", "description": "我和老板的工资纠纷法院已经立案了，想请你们催一下。"})).json()
    merged = (await post(intake, {**PERSONAL, "contact": {"name": "蓝女士", "phone": "13900001111"}})).json()
    assert (published["status"], waiting["status"], declined["status"]) == ("triaged", "triage", "rejected")
    assert merged["status"] == "merged" and merged["merged_into"] == published["case_id"]
    return {"published": published["case_id"], "unpublished": [waiting["case_id"], declined["case_id"], merged["case_id"]]}


def assert_nothing_personal(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


async def test_the_open311_list_shows_accepted_appeals_masked_and_rounded(intake, filed):
    answer = await intake.client.get("/open311/v2/requests.json")
    assert answer.status_code == 200
    assert_nothing_personal(answer.content.decode())
    shown = {r["service_request_id"]: r for r in answer.json()}
    assert filed["published"] in shown
    assert not set(filed["unpublished"]) & set(shown), "waiting for triage, declined and merged appeals are not published"
    mine = shown[filed["published"]]
    assert mine["description"] == PUBLISHED
    assert (mine["lat"], mine["long"]) == (24.068, 108.661)
    assert not {"phone", "first_name", "last_name", "email", "contact"} & set(mine)
    # Asked for by id, the unpublished ones are not there either.
    asked = await intake.client.get("/open311/v2/requests.json", params={"service_request_id": ",".join(filed["unpublished"])})
    assert asked.json() == []


async def test_the_open311_xml_list_is_masked_the_same_way(intake, filed):
    answer = await intake.client.get("/open311/v2/requests.xml")
    assert_nothing_personal(answer.content.decode())
    requests = {node.findtext("service_request_id"): node for node in ET.fromstring(answer.content).findall("request")}
    assert filed["published"] in requests and not set(filed["unpublished"]) & set(requests)
    mine = requests[filed["published"]]
    assert mine.findtext("description") == PUBLISHED
    assert (mine.findtext("lat"), mine.findtext("long")) == ("24.068", "108.661")


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_one_open311_request_is_masked_and_an_unpublished_one_is_unknown(intake, filed, fmt):
    answer = await intake.client.get(f"/open311/v2/requests/{filed['published']}.{fmt}")
    assert answer.status_code == 200
    assert_nothing_personal(answer.content.decode())
    assert PUBLISHED in answer.content.decode()
    unknown = await intake.client.get(f"/open311/v2/requests/no-such-request.{fmt}")
    for case_id in filed["unpublished"]:
        hidden = await intake.client.get(f"/open311/v2/requests/{case_id}.{fmt}")
        assert hidden.status_code == unknown.status_code == 404
        # The same answer as a made-up id, but for the id it names.
        assert hidden.content.replace(case_id.encode(), b"ID") == unknown.content.replace(b"no-such-request", b"ID")


async def test_the_auditor_who_may_not_open_the_contact_reads_lists_and_appeals_masked(intake, filed):
    case_id = filed["published"]
    listed = (await intake.client.get("/api/v1/cases", params={"limit": 200}, headers=AUDITOR)).json()["items"]
    [item] = [i for i in listed if i["case_id"] == case_id]
    assert item["title"] == "城关镇路灯坏了 请联系139****5678"
    assert (item["lat"], item["lng"]) == (24.068, 108.661)
    view = (await intake.client.get(f"/api/v1/appeals/{case_id}", headers=AUDITOR)).json()
    assert (view["title"], view["description"]) == ("城关镇路灯坏了 请联系139****5678", PUBLISHED)
    assert_nothing_personal(json.dumps(view, ensure_ascii=False))

    # The centre may open the contact anyway (and calls the citizen back): the text as filed.
    listed = (await intake.client.get("/api/v1/cases", params={"limit": 200}, headers=CENTRE)).json()["items"]
    [item] = [i for i in listed if i["case_id"] == case_id]
    assert item["title"] == PERSONAL["title"] and item["lat"] == 24.0681234
    view = (await intake.client.get(f"/api/v1/appeals/{case_id}", headers=CENTRE)).json()
    assert view["description"] == FILED


async def test_a_county_publishes_only_what_it_chose(intake, filed):
    """INTAKE_OPEN311_PUBLISH: with 忻城 publishing only transport (another county everything),
    its streetlamp is not in the feed; with 忻城 publishing infrastructure, it is."""
    for spec, shown in (("LB-XC=transport;LB-WX=*", False), ("LB-XC=infrastructure", True)):
        settings = intake.settings.model_copy(update={"open311_publish": spec, "port": free_port()})
        async with running(create_app(settings), settings) as other:
            listed = [r["service_request_id"] for r in (await other.client.get("/open311/v2/requests.json")).json()]
            one = await other.client.get(f"/open311/v2/requests/{filed['published']}.json")
        assert (filed["published"] in listed, one.status_code) == (shown, 200 if shown else 404), spec
