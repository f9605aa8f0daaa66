"""Who files on which channel, and the phone Open311 takes (issue #20): an anonymous caller
cannot pass an appeal off as 12345's, a grid worker's or a window's; Open311 refuses the
phone ``1`` as the REST API does."""

from __future__ import annotations

from shared.actors import actor_headers

GRID_WORKER = actor_headers("demo-grid-worker-cz", "grid_worker", "LB-XC-CG-CZ-G01")
VILLAGE_CLERK = actor_headers("demo-village-staff", "village_staff", "LB-WX-TW-JL")  # 江龙村's 五事 window
CITIZEN_BODY = {
    "title": "村口路灯不亮", "description": "城关镇城中社区村口路灯坏了，晚上很黑。",
    "contact": {"name": "韦先生", "phone": "13812349001"}, "location": {"address": "忻城县城关镇城中社区"},
}  # fmt: skip


async def test_an_anonymous_caller_files_on_the_citizens_channels_only(intake):
    for channel in ("app", "wechat", "mailbox"):
        filed = await intake.client.post("/api/v1/appeals", json={**CITIZEN_BODY, "channel": channel})
        assert filed.status_code == 201, (channel, filed.text)
    refusals = [
        ("hotline", {}), ("grid", {}), ("window", {}),
        ("hotline", GRID_WORKER), ("hotline", VILLAGE_CLERK), ("grid", VILLAGE_CLERK), ("window", GRID_WORKER),
    ]
    for channel, who in refusals:
        refused = await intake.client.post("/api/v1/appeals", json={**CITIZEN_BODY, "channel": channel}, headers=who)
        assert refused.status_code == 422, (channel, who, refused.text)
        assert [e["field"] for e in refused.json()["errors"]] == ["channel"], refused.text
    # Each staff channel is open to its own staff.
    assert (await intake.client.post("/api/v1/appeals", json={**CITIZEN_BODY, "channel": "grid"}, headers=GRID_WORKER)).status_code == 201
    window = {**CITIZEN_BODY, "channel": "window", "location": {"address": "武宣县通挽镇江龙村"}}
    assert (await intake.client.post("/api/v1/appeals", json=window, headers=VILLAGE_CLERK)).status_code == 201


async def test_open311_refuses_a_phone_the_rest_api_refuses(intake):
    form = {"service_code": "infrastructure", "description": "城中社区路灯不亮", "address_string": "忻城县城关镇城中社区"}
    for phone in ("1", "12345", "+-------", "1380000111122223333444"):
        for fmt in ("json", "xml"):
            refused = await intake.client.post(f"/open311/v2/requests.{fmt}", data={**form, "phone": phone})
            assert refused.status_code == 400, (phone, fmt, refused.text)
            assert "phone" in refused.text
        rest = await intake.client.post("/api/v1/appeals", json={**CITIZEN_BODY, "channel": "app", "contact": {"name": "x", "phone": phone}})
        assert rest.status_code == 422, (phone, rest.text)
    accepted = await intake.client.post("/open311/v2/requests.json", data={**form, "phone": "0772-5512345"})
    assert accepted.status_code == 201, accepted.text
