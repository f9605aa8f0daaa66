"""Photos and PDFs attached to appeals: type read from the content, size limited, stored once."""

from __future__ import annotations

import pytest

from intake.storage import sniff
from shared.testing import AUDITOR

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(200)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(300)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(100)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + bytes(100)
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + bytes(100)


@pytest.mark.parametrize(
    ("head", "expected"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp"), (PDF, "application/pdf"),
     (EXE, None), (b"<html><script>", None), (b"RIFF\x00\x00\x00\x00WAVE", None), (b"", None)],
)
def test_the_type_is_read_from_the_first_bytes(head, expected):
    assert sniff(head[:16]) == expected


async def upload(intake, content: bytes, name: str = "photo.jpg", declared: str = "image/jpeg"):
    return await intake.client.post("/api/v1/attachments", files={"file": (name, content, declared)})


async def test_a_photo_is_stored_once_and_served_back_as_uploaded(intake):
    first = await upload(intake, PNG, name="路灯.jpg")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["content_type"] == "image/png", "the content decides, not the name or the declared type"
    assert body["size"] == len(PNG)

    again = await upload(intake, PNG, name="retry.png")
    assert again.status_code == 201
    assert again.json()["id"] == body["id"], "a retried upload of the same file gets the same id"

    assert (await intake.client.get(f"/api/v1/attachments/{body['id']}")).status_code == 401  # not for anyone
    citizen = {"X-Actor-Id": "c", "X-Actor-Role": "citizen"}
    assert (await intake.client.get(f"/api/v1/attachments/{body['id']}", headers=citizen)).status_code == 403
    served = await intake.client.get(f"/api/v1/attachments/{body['id']}", headers=AUDITOR)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.content == PNG
    assert (await intake.client.get("/api/v1/attachments/att_nosuch", headers=AUDITOR)).status_code == 404


async def test_a_disguised_or_empty_file_is_refused_with_a_reason(intake):
    disguised = await upload(intake, EXE, name="photo.jpg")
    assert disguised.status_code == 415
    assert disguised.headers["content-type"].startswith("application/problem+json")
    assert "JPEG, PNG, WebP and PDF" in disguised.json()["detail"]

    empty = await upload(intake, b"", name="photo.jpg")
    assert empty.status_code == 422
    assert empty.json()["detail"] == "the file is empty"


async def test_a_file_over_the_limit_is_refused(intake):
    limit = intake.settings.attachment_max_bytes
    # Under the request limit for this path, over the file limit: counted while copying.
    big = await upload(intake, JPEG + bytes(limit))
    assert big.status_code == 413
    assert str(limit) in big.json()["detail"]
    # Far over: refused from Content-Length before the body is read.
    huge = await upload(intake, JPEG + bytes(limit * 3))
    assert huge.status_code == 413


async def test_an_appeal_names_its_photos_and_unknown_ids_are_refused(intake):
    photo = (await upload(intake, JPEG + b"streetlamp")).json()["id"]
    appeal = {
        "title": "路灯不亮", "description": "城关镇城中社区村口路灯坏了，附照片。", "channel": "app",
        "contact": {"name": "韦先生", "phone": "13812348001"},
        "location": {"address": "忻城县城关镇城中社区西宁街"},
    }
    refused = await intake.client.post("/api/v1/appeals", json={**appeal, "attachments": [photo, "att_forged"]})
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"field": "attachments.1", "in": "body", "message": "no attachment att_forged"}]

    created = await intake.client.post("/api/v1/appeals", json={**appeal, "attachments": [photo]})
    assert created.status_code == 201, created.text
    view = (await intake.client.get(f"/api/v1/appeals/{created.json()['case_id']}", headers=AUDITOR)).json()
    assert view["attachments"] == [photo]
