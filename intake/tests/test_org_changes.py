"""Intake follows the organisation directory from its topic: a village the directory adds is
used to locate the next appeal, without a restart and without calling the directory."""

import json

from services.directory.publisher import topic_spec
from shared.bus import ensure_topics
from shared.orgdata import DEMO_FILE
from shared.orgfollow import publish_snapshot
from shared.testing import AUDITOR

from intake.tests.test_intake_api import STREETLAMP, post


async def test_a_village_added_in_the_directory_locates_the_next_appeal(intake, infra):
    address = {"address": "忻城县城关镇新建村委旁边的路口"}
    before = (await post(intake, {**STREETLAMP, "title": "路口路灯坏了", "location": address})).json()
    view = (await intake.client.get(f"/api/v1/appeals/{before['case_id']}", headers=AUDITOR)).json()
    assert view["village"] is None, "no such village yet: located to the township only"
    assert view["township"] == "LB-XC-CG"

    document = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    document["units"].append({"code": "LB-XC-CG-XJ", "name": "新建村", "kind": "village", "parent": "LB-XC-CG"})
    topic = intake.settings.org_topic
    await ensure_topics(infra.bootstrap_servers, [topic_spec(topic, 1)])
    await publish_snapshot(infra.bootstrap_servers, topic, 2, document)
    await intake.runtime.context.follower.wait_for_version(2, timeout=30)

    after = (await post(intake, {**STREETLAMP, "title": "新建村路口路灯坏了", "location": address})).json()
    view = (await intake.client.get(f"/api/v1/appeals/{after['case_id']}", headers=AUDITOR)).json()
    assert (view["township"], view["village"]) == ("LB-XC-CG", "LB-XC-CG-XJ")
