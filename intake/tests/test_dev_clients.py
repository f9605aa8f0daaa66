"""Development's signed machine clients: with intake's defaults, both 12345 and the app
backend can sign (a signed ``GET ?mine=1`` was "unknown client" before)."""

from __future__ import annotations

import pytest

from intake.app import create_app
from intake.settings import IntakeSettings
from intake.tests.test_intake_api import STREETLAMP, post, signed
from shared.testing import Infra, running, service_settings, unique

# As README documents them (INTAKE_HOTLINE_CLIENTS unset): development only.
DEV_APP_BACKEND = ("appbackend", b"dev-appbackend-secret")
DEV_HOTLINE = ("hotline12345", b"dev-hotline-secret")


@pytest.fixture(scope="module")
async def intake(infra: Infra, tmp_path_factory):
    """Intake with its default machine clients (no INTAKE_HOTLINE_CLIENTS)."""
    settings = service_settings(
        IntakeSettings, infra, topic=unique("lifecycle"), database=unique("intake"),
        attachment_dir=tmp_path_factory.mktemp("attachments"), org_topic=unique("org"),
    )  # fmt: skip
    assert "hotline_clients" not in settings.model_fields_set
    async with running(create_app(settings), settings) as service:
        yield service


async def test_the_development_app_backend_reads_its_citizens_appeals(intake):
    phone = "13600007777"
    created = (await post(intake, {**STREETLAMP, "contact": {"name": "覃", "phone": phone}})).json()
    target = "/api/v1/appeals?mine=1"
    answer = await intake.client.get(target, headers=signed(*DEV_APP_BACKEND, "GET", target, phone.encode(), **{"X-Citizen-Phone": phone}))
    assert answer.status_code == 200, answer.text
    assert [item["case_id"] for item in answer.json()["items"]] == [created["case_id"]]

    # The development 12345 client still signs; an unknown one does not.
    path, body = "/api/v1/hotline/tickets", b'{"tickets": [{"ticket_no": "dev-1"}]}'
    json_type = {"content-type": "application/json"}
    assert (await intake.client.post(path, content=body, headers=signed(*DEV_HOTLINE, "POST", path, body, **json_type))).status_code == 200
    stranger = await intake.client.post(path, content=body, headers=signed("stranger", b"dev-appbackend-secret", "POST", path, body, **json_type))
    assert stranger.status_code == 401 and "unknown client" in stranger.json()["detail"]
