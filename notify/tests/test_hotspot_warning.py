"""预警提醒: a finding of insight (hotspot.detected) reaches the responsible unit's head and the
county's command centre in their in-app inboxes, once, whatever the redeliveries."""

from __future__ import annotations

from datetime import date

from shared.events import HotspotDetected, HotspotDetectedData, make_event, system_actor
from shared.testing import eventually, inbox_owner, publish, unique

SENTENCE = "城中社区西宁街的“基础设施”问题11月5日至11月18日10个工作日内被反映4次，同一地点反复出现，建议责任单位主动上门排查、一并处理。"


def finding(**changes: object) -> HotspotDetected:
    payload = HotspotDetectedData(
        finding_id=unique("finding"), kind="same_spot", level="grid", area="LB-XC-CG-CZ-G01", county="LB-XC",
        township="LB-XC-CG", street="西宁街", subject_class="infrastructure", unit="LB-XC-ZJJ", centre="LB-XC-ZZZX",
        window_start=date(2026, 11, 5), window_end=date(2026, 11, 18), window_workdays=10, count=4, baseline=0.0,
        score=1.33, case_ids=["c1", "c2", "c3"], explanation=SENTENCE,
    ).model_copy(update=changes)  # fmt: skip
    return make_event(HotspotDetected, payload=payload, producer="insight", actor=system_actor("insight"))


async def inbox(notify, recipient: str) -> list[dict]:
    response = await notify.client.get(f"/api/v1/inbox/{recipient}", headers=inbox_owner(recipient))
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def test_the_units_head_and_the_centre_are_warned_once(notify, infra):
    event = finding()
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic, event, event)  # delivered twice
    [head] = await eventually(lambda: inbox(notify, "unit:LB-XC-ZJJ:head"), what="the head's warning")
    [centre] = await eventually(lambda: inbox(notify, "unit:LB-XC-ZZZX:duty"), what="the centre's warning")
    for message in (head, centre):
        assert message["text"] == f"未诉先办预警：{SENTENCE}（依据3件诉求，2026-11-05至2026-11-18）"
    # The unit's duty desk is not warned (the head is), and nothing more arrives.
    assert all("未诉先办" not in m["text"] for m in await inbox(notify, "unit:LB-XC-ZJJ:duty"))
    assert len(await inbox(notify, "unit:LB-XC-ZJJ:head")) == 1


async def test_a_place_no_order_has_named_warns_the_townships_head(notify, infra):
    place = finding(unit=None, township="LB-WX-TW", county="LB-WX", centre="LB-WX-ZZZX")
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic, place)
    [head] = await eventually(lambda: inbox(notify, "unit:LB-WX-TW:head"), what="the township head's warning")
    assert head["text"].startswith("未诉先办预警：")
    assert await eventually(lambda: inbox(notify, "unit:LB-WX-ZZZX:duty"), what="the centre's warning")
