"""The five services as separate processes, wired only by the topic."""

import pytest

from shared.testing import AUDITOR, eventually
from tests.e2e.harness import SERVICE_NAMES

pytestmark = pytest.mark.slow

APPEAL = {
    "title": "西宁街路灯不亮",
    "description": "忻城县城关镇城中社区西宁街的路灯坏了三天，晚上很黑，老人出门不安全。",
    "channel": "app",
    "contact": {"name": "韦先生", "phone": "13812348000"},
    "location": {"address": "忻城县城关镇城中社区西宁街12号"},
}


async def test_every_service_is_ready_and_sees_an_appeal_filed_at_intake(platform):
    for name in SERVICE_NAMES:
        ready = await getattr(platform, name).get("/ready")
        assert ready.status_code == 200, (name, ready.text)

    created = await platform.intake.post("/api/v1/appeals", json=APPEAL)
    assert created.status_code == 201, created.text
    case_id = created.json()["case_id"]

    for name in ("dispatch", "sla", "scoring", "notify"):
        async def seen(client=getattr(platform, name)):
            response = await client.get(f"/api/v1/cases/{case_id}/status", headers=AUDITOR)
            return response.json() if response.status_code == 200 else None

        status = await eventually(seen, timeout=60, what=f"{name} to see the case")
        assert status["case_id"] == case_id
