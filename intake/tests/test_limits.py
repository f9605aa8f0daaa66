"""Abuse limits on filing: a phone number or a client filing too fast is told to wait."""

import pytest

from intake.app import create_app
from intake.settings import IntakeSettings
from shared.settings import SettingsError, load_settings
from shared.testing import Infra, running, service_settings, unique

from intake.tests.test_intake_api import STREETLAMP


@pytest.fixture(scope="module")
async def strict_intake(infra: Infra, tmp_path_factory):
    settings = service_settings(
        IntakeSettings, infra, topic=unique("lifecycle"), database=unique("intake"), org_topic=unique("org"),
        attachment_dir=tmp_path_factory.mktemp("att"), citizen_rate_limit="2/1h", client_rate_limit="5/1h",
    )
    async with running(create_app(settings), settings) as service:
        yield service


def appeal(n: int, phone: str) -> dict:
    return {**STREETLAMP, "title": f"第{n}件事", "contact": {"name": "韦先生", "phone": phone}}


async def test_one_phone_filing_too_fast_is_told_when_to_come_back(strict_intake):
    client = strict_intake.client
    for n in range(2):
        assert (await client.post("/api/v1/appeals", json=appeal(n, "13900000001"))).status_code == 201
    refused = await client.post("/api/v1/appeals", json=appeal(3, "13900000001"))
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert refused.json()["limited"] == "citizen" and "同一号码" in refused.json()["detail"]
    # Another citizen is not held up by the first one.
    assert (await client.post("/api/v1/appeals", json=appeal(4, "13900000002"))).status_code == 201


async def test_one_client_address_has_its_own_ceiling_also_on_open311(strict_intake):
    client = strict_intake.client
    answers = [
        (await client.post("/api/v1/appeals", json=appeal(10 + n, f"1390000010{n}"))).status_code for n in range(3)
    ]
    # The test before sent 4 of this address's 5 (the one refused for its phone counts too:
    # the client did send it); one more passes, then the address is refused whatever the phone.
    assert answers == [201, 429, 429]
    form = {"service_code": "infrastructure", "description": "路灯坏了", "address_string": "忻城县城关镇", "phone": "13900000200"}
    refused = await client.post("/open311/v2/requests.json", data=form)
    assert refused.status_code == 429
    assert refused.headers["retry-after"]


def test_a_bad_limit_stops_the_service_at_start_naming_the_variable(monkeypatch):
    monkeypatch.setenv("INTAKE_CITIZEN_RATE_LIMIT", "lots")
    with pytest.raises(SettingsError, match="CITIZEN_RATE_LIMIT"):
        load_settings(IntakeSettings)
