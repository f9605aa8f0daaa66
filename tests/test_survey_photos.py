"""The on-site survey's photos as typed attachment references (issue #23), through intake and
dispatch on one topic (real PostgreSQL, real broker, real HTTP).

A photo is uploaded to intake (``POST /api/v1/attachments``, an id of the one form
``shared.events.AttachmentId``); the unit that surveys (现场勘查) names it by that id; a
free string or an empty list is refused with 422 naming the field; the photos travel on
``case.surveyed`` and are shown where the case is read — the order (the department that
surveyed, the township whose case it is) and the case's timeline (the township).
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from dispatch.app import create_app as create_dispatch
from dispatch.settings import DispatchSettings
from intake.app import create_app as create_intake
from intake.settings import IntakeSettings
from shared.actors import actor_headers
from shared.events import SurveyedData
from shared.testing import Infra, eventually, running, service_settings, unique

JIANGLONG = actor_headers("demo-village-staff", "village_staff", "LB-WX-TW-JL")  # 江龙村's 五事 window
TONGWAN = actor_headers("demo-township-staff", "township_staff", "LB-WX-TW")
SLJ = actor_headers("demo-dept-clerk-slj", "dept_clerk", "LB-WX-SLJ")  # 武宣县水利局
JTJ = actor_headers("demo-dept-clerk-jtj", "dept_clerk", "LB-WX-JTJ")  # another department of the county

GUARDRAIL = {
    "title": "江龙村鱼塘边需要加装护栏", "description": "江龙村主路边鱼塘没有护栏，孩子上学路过很危险，村里解决不了。",
    "channel": "window", "contact": {"name": "甘先生", "phone": "13977710222"},
    "location": {"address": "武宣县通挽镇江龙村"},
}  # fmt: skip


def png(seed: int) -> bytes:
    """A real 1×1 PNG (intake reads the type from the bytes), different for each seed."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"\x00" + bytes((seed % 256, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@contextlib.asynccontextmanager
async def platform(infra: Infra, tmp_path_factory) -> AsyncIterator[SimpleNamespace]:
    topic = unique("lifecycle")
    intake_s = service_settings(IntakeSettings, infra, topic=topic, database=unique("intake"), org_topic=unique("org"),
                                attachment_dir=tmp_path_factory.mktemp("attachments"))  # fmt: skip
    dispatch_s = service_settings(DispatchSettings, infra, topic=topic, database=unique("dispatch"))
    async with running(create_intake(intake_s), intake_s) as intake, running(create_dispatch(dispatch_s), dispatch_s) as dispatch:
        yield SimpleNamespace(intake=intake.client, dispatch=dispatch.client, topic=topic)


async def order_of(p: SimpleNamespace, case_id: str, unit: str, reader: dict) -> dict:
    async def found():
        answer = await p.dispatch.get(f"/api/v1/cases/{case_id}/orders", headers=reader)
        orders = answer.json()["orders"] if answer.status_code == 200 else []
        return next((o for o in orders if o["unit"] == unit), None)

    return await eventually(found, what=f"{unit}'s order of {case_id}")


async def test_the_survey_names_uploaded_photos_and_the_township_and_department_see_them(infra: Infra, tmp_path_factory):
    async with platform(infra, tmp_path_factory) as p:
        created = await p.intake.post("/api/v1/appeals", json=GUARDRAIL, headers=JIANGLONG)
        assert created.status_code == 201, created.text
        case_id = created.json()["case_id"]
        village = await order_of(p, case_id, "LB-WX-TW-JL", JIANGLONG)
        up = await p.dispatch.post(f"/api/v1/orders/{village['order_no']}/report-up", json={"reason": "村里无力加装护栏，上报镇里"}, headers=JIANGLONG)
        assert up.status_code == 200, up.text
        await order_of(p, case_id, "LB-WX-TW", TONGWAN)
        called = await p.dispatch.post(f"/api/v1/cases/{case_id}/call", headers=TONGWAN,
                                       json={"units": ["LB-WX-SLJ"], "reason": "村、镇无力加装，需县水利局勘测施工"})  # fmt: skip
        assert called.status_code == 201, called.text
        no = (await order_of(p, case_id, "LB-WX-SLJ", SLJ))["order_no"]
        assert (await p.dispatch.post(f"/api/v1/orders/{no}/sign", json={}, headers=SLJ)).status_code == 200

        # The department's clerk uploads two photos of the site to intake.
        photos = []
        for seed in (1, 2):
            uploaded = await p.intake.post("/api/v1/attachments", files={"file": ("现场.png", png(seed), "image/png")}, headers=SLJ)
            assert uploaded.status_code == 201, uploaded.text
            photos.append(uploaded.json()["id"])

        # Free strings, a malformed id among good ones, or no photo at all: 422 naming the field.
        findings = "鱼塘临路一侧约40米无护栏"
        for bad, field in ((["鱼塘照片1"], "attachments.0"), ([photos[0], "att_" + "Z" * 32], "attachments.1"),
                           ([photos[0], photos[1][:-1]], "attachments.1"), ([], "attachments")):  # fmt: skip
            refused = await p.dispatch.post(f"/api/v1/orders/{no}/survey", json={"findings": findings, "attachments": bad}, headers=SLJ)
            assert refused.status_code == 422, (bad, refused.text)
            assert field in {e["field"] for e in refused.json()["errors"]}, (bad, refused.json())
        done = await p.dispatch.post(f"/api/v1/orders/{no}/survey", json={"findings": findings, "attachments": photos}, headers=SLJ)
        assert done.status_code == 200, done.text

        # The order as the department that surveyed reads it, and as the case's township reads it;
        # another department of the county reads neither.
        for reader in (SLJ, TONGWAN):
            seen = await p.dispatch.get(f"/api/v1/orders/{no}", headers=reader)
            assert seen.status_code == 200, seen.text
            assert (seen.json()["survey"]["findings"], seen.json()["survey"]["attachments"]) == (findings, photos)
        assert (await p.dispatch.get(f"/api/v1/orders/{no}", headers=JTJ)).status_code == 404

        # The case's timeline (intake) shows the survey with its photos, to the township.
        async def surveyed():
            answer = await p.intake.get(f"/api/v1/appeals/{case_id}", headers=TONGWAN)
            entries = [e for e in answer.json().get("timeline", []) if e["type"] == "case.surveyed"] if answer.status_code == 200 else []
            return entries or None

        [entry] = await eventually(surveyed, what="the survey on the timeline")
        assert (entry["label"], entry["detail"], entry["attachments"]) == ("已现场勘查", findings, photos)
        # The photo the timeline names is the photo uploaded.
        photo = await p.intake.get(f"/api/v1/attachments/{photos[1]}", headers=TONGWAN)
        assert photo.status_code == 200 and photo.content == png(2)


def test_a_survey_event_of_the_first_form_still_reads_and_new_photos_are_checked():
    """case.surveyed written before the photos were typed (free strings in ``attachments``,
    no ``photos``) still decodes; a typed photo of another form does not."""
    old = SurveyedData.model_validate({"order_no": "WO-1", "unit": "LB-WX-TW", "findings": "无护栏", "attachments": ["照片1"]})
    assert (old.attachments, old.photos) == (["照片1"], [])
    good = "att_" + "a" * 32
    assert SurveyedData(order_no="WO-1", unit="LB-WX-TW", findings="无护栏", photos=[good]).photos == [good]
    with pytest.raises(ValidationError) as refused:
        SurveyedData(order_no="WO-1", unit="LB-WX-TW", findings="无护栏", photos=["照片1"])
    assert [e["loc"] for e in refused.value.errors()] == [("photos", 0)]
