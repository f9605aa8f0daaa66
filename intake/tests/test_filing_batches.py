"""Filing in one statement: 12345 batches, concurrent retries, and what lands in the outbox.

Intake stores an appeal — or a whole hotline batch — with its events and its timeline in one
statement (``intake.appeal_store``). These tests hold it to what filing one by one in a
transaction gave: one appeal per ticket number and per idempotency key however the
requests race, 并单 inside a batch, and every case's events in order.
"""

from __future__ import annotations

import asyncio
import json
import uuid

from sqlalchemy import select

from intake.models import appeals, timeline
from shared.db import outbox
from shared.signing import signature_headers
from shared.testing import AUDITOR

from intake.tests.conftest import HOTLINE_SECRET

PATH = "/api/v1/hotline/tickets"
LAMP = {"title": "城西社区路灯不亮", "description": "城关镇城西社区文化广场旁的路灯坏了一周", "caller_name": "李先生",
        "caller_phone": "13700000101", "address": "忻城县城关镇城西社区"}  # fmt: skip


def ticket(number: str, **fields) -> dict:
    return {**LAMP, "ticket_no": number, **fields}


async def push(intake, tickets: list[dict]):
    body = json.dumps({"tickets": tickets}, ensure_ascii=False).encode()
    headers = {**signature_headers("hotline12345", HOTLINE_SECRET, method="POST", path=PATH, body=body), "content-type": "application/json"}
    response = await intake.client.post(PATH, content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def stored(intake, column, values) -> list:
    async with intake.runtime.engine.connect() as conn:
        return (await conn.execute(select(appeals).where(column.in_(values)))).all()


def unique_no(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}"


async def test_a_ticket_number_twice_in_one_batch_is_one_appeal(intake):
    number = unique_no("T")
    answer = await push(intake, [ticket(number), ticket(number)])
    first, second = answer["results"]
    assert (answer["created"], answer["duplicate"]) == (1, 1)
    assert (first["result"], second["result"]) == ("created", "duplicate")
    assert second["case_id"] == first["case_id"] and second["tracking_no"] == first["tracking_no"]
    assert len(await stored(intake, appeals.c.external_ref, [number])) == 1


async def test_the_same_matter_twice_in_one_batch_is_merged_into_the_first(intake):
    place = {"address": "武宣县通挽镇大塘村"}
    first_no, second_no = unique_no("M"), unique_no("M")
    answer = await push(intake, [
        ticket(first_no, title="大塘村文化楼旁鱼塘边需要安装护栏", description="鱼塘边没有护栏，孩子放学经过很危险。", **place),
        ticket(second_no, title="大塘村文化楼旁鱼塘边要装护栏", description="鱼塘旁边没有护栏，孩子经过危险。",
               caller_name="蓝女士", caller_phone="13900001112", **place),
    ])  # fmt: skip
    first, second = answer["results"]
    assert (first["result"], second["result"]) == ("created", "created")
    assert first["status"] != "merged"
    assert second["status"] == "merged"
    (row,) = await stored(intake, appeals.c.case_id, [second["case_id"]])
    assert row.merged_into == first["case_id"]
    view = (await intake.client.get(f"/api/v1/appeals/{second['case_id']}", headers=AUDITOR)).json()
    assert [e["type"] for e in view["timeline"]][:3] == ["case.received", "case.accepted", "case.merged"]


async def test_concurrent_pushes_of_the_same_tickets_file_each_ticket_once(intake):
    numbers = [unique_no("C") for _ in range(30)]
    batches = [[ticket(n, caller_phone=f"137000{i:05d}") for i, n in enumerate(numbers)] for _ in range(3)]
    answers = await asyncio.gather(*(push(intake, batch) for batch in batches))
    assert sum(a["created"] for a in answers) == len(numbers), "every ticket created exactly once"
    assert all(a["created"] + a["duplicate"] == len(numbers) for a in answers)
    case_of = [[r["case_id"] for r in a["results"]] for a in answers]
    assert case_of[0] == case_of[1] == case_of[2], "every push answers with the same case per ticket"
    rows = await stored(intake, appeals.c.external_ref, numbers)
    assert sorted(r.case_id for r in rows) == sorted(case_of[0])
    assert len({r.tracking_no for r in rows}) == len(numbers)


async def test_concurrent_retries_with_one_idempotency_key_file_one_appeal(intake):
    key = unique_no("retry")
    body = {"title": "村口路灯不亮", "description": "路灯坏了三天", "channel": "app", "contact": {"name": "韦先生", "phone": "13812348001"}}
    answers = await asyncio.gather(
        *(intake.client.post("/api/v1/appeals", json=body, headers={"Idempotency-Key": key}) for _ in range(6))
    )
    assert [a.status_code for a in answers] == [201] * 6
    assert len({a.json()["case_id"] for a in answers}) == 1
    assert len(await stored(intake, appeals.c.idempotency_key, [key])) == 1


async def test_each_case_events_are_in_the_outbox_in_order_with_their_timeline(intake):
    matters = [("路灯不亮", "城西社区文化广场旁的路灯坏了一周"), ("噪音扰民", "夜里工地施工噪音很大"),
               ("垃圾清运不及时", "小区垃圾三天没人清运"), ("道路坑洼", "城西路有几个大坑，下雨积水"),
               ("下水道堵塞", "巷子里下水道堵了，污水漫到路面")]  # fmt: skip
    numbers = [unique_no("O") for _ in matters]
    answer = await push(intake, [
        ticket(n, title=title, description=text, caller_phone=f"137100{i:05d}")
        for i, (n, (title, text)) in enumerate(zip(numbers, matters, strict=True))
    ])  # fmt: skip
    case_ids = [r["case_id"] for r in answer["results"]]
    async with intake.runtime.engine.connect() as conn:
        events = (
            await conn.execute(select(outbox.c.key, outbox.c.event_type).where(outbox.c.key.in_(case_ids)).order_by(outbox.c.id))
        ).all()
        entries = (await conn.execute(select(timeline.c.case_id, timeline.c.event_type).where(timeline.c.case_id.in_(case_ids)))).all()
    for case_id in case_ids:
        types = [e.event_type for e in events if e.key == case_id]
        # (an earlier test's lamp in 城西社区 may make the first one a duplicate: merged before triaged)
        assert types in (["case.received", "case.accepted", "case.triaged"],
                         ["case.received", "case.accepted", "case.merged", "case.triaged"]), types  # fmt: skip
        assert sorted(e.event_type for e in entries if e.case_id == case_id) == sorted(types)
