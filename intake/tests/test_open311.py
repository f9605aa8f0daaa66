"""Open311 GeoReport v2, as a FixMyStreet-style client speaks it: form-encoded in, JSON or XML out."""

import xml.etree.ElementTree as ET

FORM = {
    "service_code": "infrastructure",
    "description": "城中社区村口路灯不亮\n已经三天了",
    "address_string": "忻城县城关镇城中社区",
    "first_name": "先生",
    "last_name": "韦",
    "phone": "13812340001",
}


async def test_service_list_and_definition_in_json_and_xml(intake):
    services = (await intake.client.get("/open311/v2/services.json")).json()
    codes = {s["service_code"]: s for s in services}
    assert codes["infrastructure"]["service_name"] == "基础设施"
    assert codes["infrastructure"]["metadata"] is True

    xml = await intake.client.get("/open311/v2/services.xml")
    assert xml.headers["content-type"].startswith("text/xml")
    names = [node.findtext("service_name") for node in ET.fromstring(xml.content).findall("service")]
    assert "基础设施" in names

    definition = (await intake.client.get("/open311/v2/services/infrastructure.json")).json()
    assert definition["attributes"][0]["code"] == "phone" and definition["attributes"][0]["required"] is True


async def test_request_round_trip_json(intake):
    created = await intake.client.post("/open311/v2/requests.json", data=FORM)
    assert created.status_code == 201, created.text
    [answer] = created.json()
    request_id = answer["service_request_id"]
    assert "XC-" in answer["service_notice"]

    [shown] = (await intake.client.get(f"/open311/v2/requests/{request_id}.json")).json()
    assert shown["status"] == "open"
    assert shown["service_code"] == "infrastructure"
    assert shown["address"] == "忻城县城关镇城中社区"
    listed = (await intake.client.get("/open311/v2/requests.json", params={"service_request_id": request_id})).json()
    assert [r["service_request_id"] for r in listed] == [request_id]
    assert (await intake.client.get(f"/open311/v2/tokens/{request_id}.json")).json()[0]["service_request_id"] == request_id


async def test_request_round_trip_xml(intake):
    noise = {**FORM, "service_code": "environment", "description": "城西社区工地夜间施工噪音扰民", "address_string": "忻城县城关镇城西社区", "phone": "13812340002"}
    created = await intake.client.post("/open311/v2/requests.xml", data=noise)
    assert created.status_code == 201
    request_id = ET.fromstring(created.content).find("request").findtext("service_request_id")
    shown = ET.fromstring((await intake.client.get(f"/open311/v2/requests/{request_id}.xml")).content)
    assert shown.find("request").findtext("status") == "open"
    assert shown.find("request").findtext("description") == "城西社区工地夜间施工噪音扰民"


async def test_errors_use_the_spec_format(intake):
    unknown = await intake.client.post("/open311/v2/requests.json", data={**FORM, "service_code": "nope"})
    assert unknown.status_code == 400
    assert unknown.json() == [{"code": 400, "description": "service_code nope not found"}]
    no_phone = await intake.client.post("/open311/v2/requests.xml", data={k: v for k, v in FORM.items() if k != "phone"})
    error = ET.fromstring(no_phone.content).find("error")
    assert no_phone.status_code == 400 and "phone" in error.findtext("description")
    bad_lat = await intake.client.post("/open311/v2/requests.json", data={**FORM, "lat": "north"})
    assert bad_lat.status_code == 400 and "lat" in bad_lat.json()[0]["description"]
    missing = await intake.client.get("/open311/v2/requests/nope.json")
    assert missing.status_code == 404 and missing.json()[0]["code"] == 404
