"""Intake over real HTTP, with real PostgreSQL and a real broker."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

import httpx
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select

from intake.api import HotlineTicket
from intake.appeal_store import CandidateCache, NearQuery
from intake.dedup import bounding_box
from intake.models import appeals
from shared.actors import actor_headers
from shared.cloudevents import header
from shared.db import processed_events
from shared.contact import contact_keyring, open_phone
from shared.crypto import DecryptionError
from shared.events import decode_event
from shared.signing import signature_headers
from shared.testing import AUDITOR, CENTRE, eventually

from intake.tests.conftest import APP_SECRET, HOTLINE_SECRET

PHONE = "13812348000"

STREETLAMP = {
    "title": "村口路灯不亮",
    "description": "忻城县城关镇城中社区村口的路灯坏了三天，晚上很黑，老人出门不安全。",
    "channel": "app",
    "contact": {"name": "韦先生", "phone": PHONE, "id_number": "45132219800101123X"},
    "location": {"address": "忻城县城关镇城中社区西宁街12号3栋"},
}


async def post(intake, body, **headers) -> httpx.Response:
    return await intake.client.post("/api/v1/appeals", json=body, headers=headers)


def signed(client_id: str, secret: bytes, method: str, path: str, body: bytes = b"", **extra) -> dict[str, str]:
    return {**signature_headers(client_id, secret, method=method, path=path, body=body), **extra}


async def test_an_appeal_is_accepted_classified_and_located(intake):
    response = await post(intake, STREETLAMP)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["tracking_no"].startswith("XC-") and len(created["tracking_no"]) == len("XC-20261122-000123")
    assert created["status"] == "triaged"

    view = (await intake.client.get(f"/api/v1/appeals/{created['case_id']}", headers=AUDITOR)).json()
    assert view["subject_class"] == "infrastructure"
    assert view["township"] and view["village"]
    assert view["street"] == "忻城县城关镇城中社区西宁街", "address cut to the street (PIPL)"
    assert view["contact_phone"] == "138****8000"
    # Intake applies its own events in the filing transaction: the citizen sees them at once.
    assert [entry["type"] for entry in view["timeline"]] == ["case.received", "case.accepted", "case.triaged"]

    # When they come back from the topic they are skipped unread: no second transaction.
    await intake.runtime.relay.flush()
    consumer = intake.runtime.consumer
    await eventually(
        lambda: _caught_up(consumer, intake.settings.kafka_partitions), what="intake's consumer to pass its own events"
    )
    async with intake.runtime.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(processed_events))).scalar() == 0


async def _caught_up(consumer, partitions: int) -> bool:
    lag = consumer.lag()
    return len(lag) == partitions and sum(consumer.committed_offsets().values()) > 0 and consumer.lag_total(lag) == 0


async def _timeline_types(intake, case_id, n):
    view = (await intake.client.get(f"/api/v1/appeals/{case_id}", headers=AUDITOR)).json()
    types = [entry["type"] for entry in view["timeline"]]
    return types if len(types) >= n else None


async def test_personal_data_is_encrypted_at_rest_and_masked_on_the_topic(intake):
    created = (await post(intake, {**STREETLAMP, "title": "路灯又坏了"})).json()
    async with intake.runtime.engine.connect() as conn:
        row = (await conn.execute(select(appeals).where(appeals.c.case_id == created["case_id"]))).one()
    stored = json.dumps([str(v) for v in row], ensure_ascii=False)
    assert PHONE not in stored and "45132219800101123X" not in stored and "12号" not in stored
    assert row.phone_enc.startswith("v1.")

    await intake.runtime.relay.flush()
    consumer = AIOKafkaConsumer(
        intake.settings.kafka_topic, bootstrap_servers=intake.settings.kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=3000, max_records=10_000)
    finally:
        await consumer.stop()
    messages = [m for ms in batch.values() for m in ms]
    assert any(header(m.headers, "ce_subject") == created["case_id"] for m in messages)
    for message in messages:
        text = message.value.decode() + repr(message.headers)
        assert PHONE not in text and "45132219800101123X" not in text, "personal data in clear on the topic"

    # Only a holder of the contact key ring (notify) can open the sealed phone to reach the citizen.
    received = next(
        decode_event(m.value) for m in messages
        if header(m.headers, "ce_subject") == created["case_id"] and header(m.headers, "ce_type") == "case.received"
    )
    assert open_phone(intake.runtime.context.contact_keys, received.payload.contact_sealed) == PHONE
    with pytest.raises(DecryptionError):
        open_phone(contact_keyring("other:" + base64.b64encode(bytes(32)).decode()), received.payload.contact_sealed)


async def test_retry_with_the_same_idempotency_key_returns_the_original(intake):
    first = await post(intake, STREETLAMP, **{"Idempotency-Key": "app-7f3a"})
    again = await post(intake, STREETLAMP, **{"Idempotency-Key": "app-7f3a"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    different = await post(intake, {**STREETLAMP, "title": "别的事"}, **{"Idempotency-Key": "app-7f3a"})
    assert different.status_code == 409
    assert different.headers["content-type"] == "application/problem+json"
    assert different.json()["type"].endswith("/idempotency-key-reused")


async def test_out_of_scope_appeal_is_declined_with_a_reason_never_dropped(intake):
    body = {**STREETLAMP, "title": "工资纠纷", "description": "我和老板的工资纠纷法院已经立案了，想请你们催一下。"}
    created = (await post(intake, body)).json()
    assert created["status"] == "rejected"
    assert "诉讼" in created["rejection_reason"]
    types = await eventually(lambda: _timeline_types(intake, created["case_id"], 2))
    assert types == ["case.received", "case.rejected"]


async def test_unclear_appeal_goes_to_manual_triage_and_can_be_triaged(intake):
    body = {**STREETLAMP, "title": "有个事情", "description": "请联系我", "location": None}
    created = (await post(intake, body)).json()
    assert created["status"] == "triage"
    triage = {
        "category": "烦心事", "subject_class": "disputes", "urgency": "normal",
        "township": "LB-XC-CG",
    }
    # Nobody outside the centre triages: a department clerk is refused whatever the case (403:
    # its role may never triage, so the answer says nothing about the id), the county centre may.
    clerk = {"X-Actor-Id": "clerk", "X-Actor-Role": "dept_clerk", "X-Actor-Unit": "LB-XC-ZJJ"}
    refused = await intake.client.post(f"/api/v1/appeals/{created['case_id']}/triage", json=triage, headers=clerk)
    assert refused.status_code == 403
    answer = await intake.client.post(f"/api/v1/appeals/{created['case_id']}/triage", json=triage, headers=CENTRE)
    assert answer.status_code == 200, answer.text
    view = (await intake.client.get(f"/api/v1/appeals/{created['case_id']}", headers=AUDITOR)).json()
    assert (view["status"], view["subject_class"], view["township"]) == ("triaged", "disputes", "LB-XC-CG")


async def test_a_case_placed_as_far_as_a_grid_is_in_its_grid_workers_list(intake):
    """A centre places an appeal in a township and a grid, no village (人工分拨 allows it):
    the grid's worker, and its village's, list it as they read it — the list follows
    ``may_see_case`` on every place, not the village column alone — before any unit holds it."""
    body = {**STREETLAMP, "title": "江龙村第二网格水渠堵塞", "description": "水渠堵了，请看看。", "location": None}
    created = (await post(intake, body)).json()
    assert created["status"] == "triage"
    triage = {"category": "烦心事", "subject_class": "environment", "urgency": "normal",
              "township": "LB-WX-TW", "grid": "LB-WX-TW-JL-G02"}  # fmt: skip
    answer = await intake.client.post(f"/api/v1/appeals/{created['case_id']}/triage", json=triage,
                                      headers={**CENTRE, "X-Actor-Unit": "LB-WX-ZZZX"})  # fmt: skip
    assert answer.status_code == 200, answer.text

    def person(role: str, unit: str) -> dict:
        return actor_headers(f"{role}-{unit}", role, unit)

    async def listed(headers: dict) -> bool:
        page = await intake.client.get("/api/v1/cases", params={"limit": 200}, headers=headers)
        assert page.status_code == 200, page.text
        return created["case_id"] in {item["case_id"] for item in page.json()["items"]}

    readers = [person("grid_worker", "LB-WX-TW-JL-G02"), person("grid_worker", "LB-WX-TW-JL-G01"),
               person("village_staff", "LB-WX-TW-JL"), person("township_staff", "LB-WX-TW")]  # fmt: skip
    for headers in readers:
        assert (await intake.client.get(f"/api/v1/appeals/{created['case_id']}", headers=headers)).status_code == 200
        assert await listed(headers), headers
    other_village = person("grid_worker", "LB-WX-TW-DT-G01")  # 大塘村's grid: neither reads nor lists it
    assert (await intake.client.get(f"/api/v1/appeals/{created['case_id']}", headers=other_village)).status_code == 404
    assert not await listed(other_village)


async def test_a_second_report_of_the_same_matter_nearby_is_merged(intake):
    place = {"address": "武宣县通挽镇大塘村", "lat": None, "lng": None}
    first = (await post(intake, {**STREETLAMP, "title": "大塘村鱼塘边需要安装护栏", "description": "鱼塘边没有护栏，孩子放学经过很危险。", "location": place})).json()
    second = (await post(intake, {**STREETLAMP, "title": "大塘村鱼塘边要装护栏", "description": "鱼塘旁边没有护栏，孩子经过危险。", "contact": {"name": "蓝女士", "phone": "13900001111"}, "location": place})).json()
    assert first["status"] != "merged"
    assert second["status"] == "merged" and second["merged_into"] == first["case_id"]
    types = await eventually(lambda: _timeline_types(intake, second["case_id"], 3))
    assert "case.merged" in types


async def test_the_duplicate_search_reads_what_intake_does_not_remember_and_sees_a_triaged_township(intake):
    """Intake remembers candidates' texts (``CandidateCache``): a case it never met (filed by
    another replica, or forgotten) is read from the database, and a township moved by a
    manual triage counts, not the township the case had when it was remembered."""
    text = {"title": "六纳村文化室屋顶漏雨", "description": "六纳村文化室屋顶漏雨，墙面发霉。"}
    first = (await post(intake, {**STREETLAMP, **text, "location": None})).json()
    assert first["status"] == "triage"  # nowhere: not searched, not a place to search
    triage = {"category": "烦心事", "subject_class": "disputes", "urgency": "normal", "township": "LB-WX-TW"}
    wuxuan_centre = {**CENTRE, "X-Actor-Unit": "LB-WX-ZZZX"}  # 六纳村 is 武宣县's
    answer = await intake.client.post(f"/api/v1/appeals/{first['case_id']}/triage", json=triage, headers=wuxuan_centre)
    assert answer.status_code == 200, answer.text

    store = intake.runtime.context.store
    assert store.candidates.get(first["case_id"], None).township is None  # remembered as filed
    again = {**STREETLAMP, **text, "contact": {"name": "蓝女士", "phone": "13900002222"},
             "location": {"address": "武宣县通挽镇六纳村"}}  # fmt: skip
    second = (await post(intake, again)).json()
    assert second["status"] == "merged" and second["merged_into"] == first["case_id"]

    store.candidates = CandidateCache()  # as a replica that never met either case
    third = (await post(intake, {**again, "contact": {"name": "覃先生", "phone": "13900003333"}})).json()
    assert third["status"] == "merged" and third["merged_into"] == first["case_id"]
    assert store.candidates.missing([first["case_id"]]) == []  # read once, remembered again


async def test_the_search_for_duplicates_names_each_open_case_once_newest_first(intake):
    """An appeal with coordinates is searched for by its township and by a box around it: a
    case both sides find is one candidate, not two."""
    place = {"address": "武宣县通挽镇六纳村", "lat": 24.0661, "lng": 108.6655}
    texts = ("六纳村球场围栏倒了", "六纳村小学门口缺减速带", "六纳村自来水浑浊发黄")
    filed = [
        (await post(intake, {**STREETLAMP, "title": title, "description": title, "location": place,
                             "contact": {"name": "覃女士", "phone": f"1390000{k:04d}"}})).json()
        for k, title in enumerate(texts)
    ]  # fmt: skip
    assert all(f["status"] != "merged" for f in filed)
    store = intake.runtime.context.store
    box = bounding_box(place["lat"], place["lng"], 300)
    (found,) = await store.open_cases_near([NearQuery(box=box, township="LB-WX-TW", since=datetime.now(UTC) - timedelta(days=1))])
    ids = [c.case_id for c in found]
    assert len(ids) == len(set(ids))
    assert [i for i in ids if i in {f["case_id"] for f in filed}] == [f["case_id"] for f in reversed(filed)]
    assert [c.received_at for c in found] == sorted((c.received_at for c in found), reverse=True)


async def test_bad_input_is_a_problem_naming_the_field(intake):
    response = await post(intake, {**STREETLAMP, "contact": {"name": "韦", "phone": "call me"}})
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["errors"][0]["field"] == "contact.phone"
    wrong_type = await intake.client.post("/api/v1/appeals", content="title=x", headers={"content-type": "application/x-www-form-urlencoded"})
    assert wrong_type.status_code == 415
    huge = await intake.client.post("/api/v1/appeals", content=b"{" + b" " * 300_000 + b"}", headers={"content-type": "application/json"})
    assert huge.status_code == 413
    missing = await intake.client.get("/api/v1/appeals/no-such-case", headers=AUDITOR)
    assert missing.status_code == 404 and missing.json()["status"] == 404


def _batch(tickets) -> bytes:
    return json.dumps({"tickets": tickets}, ensure_ascii=False).encode()


TICKETS = [
    {"ticket_no": "12345-0001", "title": "路灯不亮", "description": "城关镇城西社区路灯坏了", "caller_name": "李先生", "caller_phone": "13700000001", "address": "忻城县城关镇城西社区"},
    {"ticket_no": "12345-0002", "title": "噪音扰民", "description": "通挽镇通挽社区晚上施工噪音很大", "caller_name": "黄女士", "caller_phone": "13700000002", "address": "武宣县通挽镇通挽社区"},
    {"ticket_no": "12345-0003", "title": "", "description": "缺标题", "caller_name": "王", "caller_phone": "13700000003"},
]


async def test_hotline_batch_is_signed_deduplicated_and_never_sunk_by_one_bad_ticket(intake):
    path = "/api/v1/hotline/tickets"
    body = _batch(TICKETS)
    first = await intake.client.post(path, content=body, headers=signed("hotline12345", HOTLINE_SECRET, "POST", path, body, **{"content-type": "application/json"}))
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["created"], answer["duplicate"], answer["rejected"]) == (2, 0, 1)
    assert answer["results"][2]["errors"][0]["field"] == "title"

    again = await intake.client.post(path, content=body, headers=signed("hotline12345", HOTLINE_SECRET, "POST", path, body, **{"content-type": "application/json"}))
    repeat = again.json()
    assert (repeat["created"], repeat["duplicate"]) == (0, 2)
    assert [r["case_id"] for r in repeat["results"][:2]] == [r["case_id"] for r in answer["results"][:2]]


async def test_the_openapi_tells_12345_every_ticket_field_and_its_example_is_filed(intake):
    """12345 learns the ticket from /openapi.json, not from rejections: every field named with
    a description, and an example that the model accepts and the route files."""
    spec = (await intake.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    body = spec["paths"]["/api/v1/hotline/tickets"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    batch = schemas[body["$ref"].rsplit("/", 1)[-1]]
    ticket = batch["properties"]["tickets"]["items"]
    ticket = schemas[ticket["$ref"].rsplit("/", 1)[-1]] if "$ref" in ticket else ticket
    assert set(ticket["properties"]) == set(HotlineTicket.model_fields)
    assert set(ticket["required"]) == {"ticket_no", "title", "description", "caller_name", "caller_phone"}
    undescribed = [name for name, field in ticket["properties"].items() if not field.get("description")]
    assert undescribed == []
    assert ticket["properties"]["ticket_no"]["maxLength"] == 64
    [example] = ticket["examples"]
    assert HotlineTicket.model_validate(example).ticket_no == example["ticket_no"]

    path = "/api/v1/hotline/tickets"
    sent = _batch([example])
    answer = await intake.client.post(path, content=sent, headers=signed("hotline12345", HOTLINE_SECRET, "POST", path, sent, **{"content-type": "application/json"}))
    assert answer.status_code == 200, answer.text
    assert [r["result"] for r in answer.json()["results"]] == ["created"]


async def test_a_ticket_that_is_not_even_an_object_is_rejected_on_its_own(intake):
    path = "/api/v1/hotline/tickets"
    sent = _batch([{**TICKETS[0], "ticket_no": "12345-0700"}, "路灯不亮", {"ticket_no": "12345-0701"}])
    answer = await intake.client.post(path, content=sent, headers=signed("hotline12345", HOTLINE_SECRET, "POST", path, sent, **{"content-type": "application/json"}))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["result"] for r in results] == ["created", "rejected", "rejected"]
    assert results[2]["ticket_no"] == "12345-0701" and {e["field"] for e in results[2]["errors"]} >= {"title", "caller_phone"}


async def test_hotline_refuses_bad_signatures_old_timestamps_and_replays(intake):
    path = "/api/v1/hotline/tickets"
    body = _batch([{**TICKETS[0], "ticket_no": "12345-0900"}])
    json_type = {"content-type": "application/json"}

    forged = signed("hotline12345", b"wrong-secret", "POST", path, body, **json_type)
    response = await intake.client.post(path, content=body, headers=forged)
    assert response.status_code == 401 and response.headers["content-type"] == "application/problem+json"

    stale = {**signature_headers("hotline12345", HOTLINE_SECRET, method="POST", path=path, body=body, now=time.time() - 301), **json_type}
    assert (await intake.client.post(path, content=body, headers=stale)).status_code == 401

    good = signed("hotline12345", HOTLINE_SECRET, "POST", path, body, **json_type)
    assert (await intake.client.post(path, content=body, headers=good)).status_code == 200
    replayed = await intake.client.post(path, content=body, headers=good)
    assert replayed.status_code == 401 and "replayed" in replayed.json()["detail"]

    async with intake.runtime.engine.connect() as conn:
        stored = (await conn.execute(select(appeals.c.case_id).where(appeals.c.external_ref == "12345-0900"))).all()
    assert len(stored) == 1, "a refused request must store nothing"


async def test_a_citizen_sees_their_own_appeals_page_by_page(intake):
    phone = "13600002222"
    mine = []
    for title in ("路灯不亮", "垃圾没人清", "道路坑洼"):
        mine.append((await post(intake, {**STREETLAMP, "title": title, "contact": {"name": "覃", "phone": phone}})).json()["case_id"])
    await post(intake, {**STREETLAMP, "title": "别人的诉求", "contact": {"name": "陆", "phone": "13600003333"}})

    seen, cursor = [], None
    while True:
        target = "/api/v1/appeals?" + httpx.QueryParams({"mine": 1, "limit": 2, **({"cursor": cursor} if cursor else {})}).__str__()
        headers = signed("appbackend", APP_SECRET, "GET", target, phone.encode(), **{"X-Citizen-Phone": phone})
        page = (await intake.client.get(target, headers=headers)).json()
        seen += [item["case_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(mine))
    unsigned = await intake.client.get("/api/v1/appeals", params={"mine": 1}, headers={"X-Citizen-Phone": phone})
    assert unsigned.status_code == 401
    # A signature for one citizen does not open another's appeals.
    target = "/api/v1/appeals?mine=1&limit=2"
    headers = signed("appbackend", APP_SECRET, "GET", target, phone.encode(), **{"X-Citizen-Phone": "13600003333"})
    assert (await intake.client.get(target, headers=headers)).status_code == 401
