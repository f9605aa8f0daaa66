"""What the public closed list (公示) and read-only staff are shown (issue #20): summaries and
free text with personal data masked — through HTTP against the running service."""

from __future__ import annotations

from sqlalchemy import update

from dispatch.models import cases
from shared.testing import AUDITOR

from dispatch.tests.helpers import CHENGGUAN, CLERK, STREETLAMP, act, file_case, orders_of

# A summary as a township might write it, and as the public may read it.
WRITTEN = "板江村李四家（村民反映住板江村5组12号）门前路灯已修复，回访电话13912345678"
PUBLISHED = "板江村李*家（村民反映住板江村5组**号）门前路灯已修复，回访电话139****5678"
# What a citizen wrote, as intake puts it on the topic (phones already scrubbed there).
TITLE = "我是张三，西宁街12号3单元501门口路灯不亮"
TITLE_MASKED = "我是张*，西宁街**号**单元**门口路灯不亮"


async def closed_case(dispatch, matter, summary: str | None) -> dict:
    """A case worked by 住建局 and verified by 城关镇; the order as it then stands."""
    case_id = await file_case(dispatch, matter)
    [order] = await orders_of(dispatch, case_id)
    no = order["order_no"]
    assert (await act(dispatch, no, "sign", CLERK)).status_code == 200
    assert (await act(dispatch, no, "progress", CLERK, {"note": "已到西宁街12号3单元501现场查看", "first_contact": True})).status_code == 200
    assert (await act(dispatch, no, "resolve", CLERK, {"answer": "路灯已修复，请拨13812348000反馈"})).status_code == 200
    body = {"passed": True, **({"public_summary": summary} if summary else {})}
    verified = await dispatch.client.post(f"/api/v1/cases/{case_id}/verify", headers=CHENGGUAN, json=body)
    assert verified.status_code == 200, verified.text
    return {"case_id": case_id, "order_no": no}


async def public_summaries(dispatch) -> dict[str, str]:
    items = (await dispatch.client.get("/api/v1/public/closed", params={"limit": 100})).json()["items"]
    return {item["tracking_no"]: item["summary"] for item in items}


async def test_the_public_closed_list_masks_names_phones_and_doors(dispatch):
    written = await closed_case(dispatch, STREETLAMP, WRITTEN)
    from_title = await closed_case(dispatch, (TITLE, *STREETLAMP[1:]), None)
    summaries = list((await public_summaries(dispatch)).values())
    assert PUBLISHED in summaries
    assert f"{TITLE_MASKED}：已办结。" in summaries, "the default summary is the title, masked"
    assert not any("13912345678" in s or "李四" in s or "12号" in s or "张三" in s for s in summaries)
    assert written != from_title


async def test_a_summary_stored_before_masking_is_masked_when_read(dispatch):
    case_id = (await closed_case(dispatch, STREETLAMP, "城中社区路灯已修复"))["case_id"]
    async with dispatch.runtime.engine.begin() as conn:  # as an older release stored it
        await conn.execute(update(cases).where(cases.c.case_id == case_id).values(public_summary=WRITTEN))
    assert PUBLISHED in (await public_summaries(dispatch)).values()
    assert WRITTEN not in (await public_summaries(dispatch)).values()


async def test_the_auditor_reads_orders_with_free_text_masked_the_unit_as_written(dispatch):
    case = await closed_case(dispatch, (TITLE, *STREETLAMP[1:]), "城中社区路灯已修复")
    read = (await dispatch.client.get(f"/api/v1/cases/{case['case_id']}/orders", headers=AUDITOR)).json()
    [order] = read["orders"]
    assert order["answer"] == "路灯已修复，请拨138****8000反馈"
    assert [p["note"] for p in order["progress"]] == ["已到西宁街**号**单元**现场查看"]
    assert "13812348000" not in str(read) and "12号3单元501" not in str(read)
    one = (await dispatch.client.get(f"/api/v1/orders/{case['order_no']}", headers=AUDITOR)).json()
    assert "13812348000" not in str(one) and "12号3单元501" not in str(one)

    # The unit that may call the citizen reads what was written.
    mine = (await dispatch.client.get(f"/api/v1/orders/{case['order_no']}", headers=CLERK)).json()
    assert mine["answer"] == "路灯已修复，请拨13812348000反馈"


async def test_the_auditor_reads_a_units_queue_with_titles_masked(dispatch):
    case_id = await file_case(dispatch, (TITLE, *STREETLAMP[1:]))
    await orders_of(dispatch, case_id)

    async def titles(headers) -> list[str]:
        queue = await dispatch.client.get("/api/v1/units/LB-XC-ZJJ/orders", params={"queue": "to_sign", "limit": 100}, headers=headers)
        return [item["title"] for item in queue.json()["items"]]

    assert TITLE_MASKED in await titles(AUDITOR) and TITLE not in await titles(AUDITOR)
    assert TITLE in await titles(CLERK)
