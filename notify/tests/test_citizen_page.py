"""The citizen's page (NOTIFY_RATING_URL) over real HTTP against a running notify, its
database and topic, with the development SMS gateway stand-in (services/dev/receiver)
recording what is sent: the rating link read and used once, the look-up by tracking number
with a one-time SMS code; and the same in headless Chromium at a phone's size."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from notify.tests.helpers import UNIT, Case, events_of, rating_token, set_clock
from shared.events import CaseResolved, ResolvedData
from shared.testing import eventually, publish
from shared.workdays import LOCAL

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "citizen"
CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 375, "height": 667}
ANSWER = "路灯线路已修复，当晚亮灯。如有问题请联系13912345678"  # a phone in free text must not reach the page


def resolved(case: Case) -> CaseResolved:
    return case._make(CaseResolved, ResolvedData(order_no=f"JB-{case.id[-6:]}-0", unit=UNIT, answer=ANSWER), "dispatch")


def daytime_from(now: datetime) -> datetime:
    """``now`` if it is daytime in Beijing, else the next 10:00 there: never earlier than the
    case's other events (the status follows event times), never in the quiet hours."""
    local = now.astimezone(LOCAL)
    if 8 <= local.hour < 21:
        return now
    day = local.date() + timedelta(days=1 if local.hour >= 21 else 0)
    return datetime.combine(day, time(10), tzinfo=LOCAL).astimezone(UTC)


async def closed_with_answer(notify, infra, receiver) -> tuple[Case, str, datetime]:
    """A case answered and closed just now (its other events carry the real time too, and the
    status follows event times); its rating token from the closing SMS; the closing moment,
    which notify's clock is set to."""
    case = Case(phone="13800002222")
    before = [case.received(), case.accepted(), case.dispatched(), resolved(case)]
    at = daytime_from(datetime.now(UTC))  # the closing SMS is not urgent: quiet hours (22:00–07:00) would hold it
    await set_clock(notify, at)
    await publish(infra.bootstrap_servers, notify.settings.kafka_topic, *before, case.closed(at))
    return case, await rating_token(receiver, case), at


async def code_from_sms(receiver, case: Case, seen: int = 0) -> str:
    """The newest look-up code the SMS stand-in recorded for the case's phone."""

    async def codes() -> list[dict]:
        found = [m for m in await receiver.messages(path="/sms", contains=case.tracking_no) if "验证码" in m["json"]["text"]]
        return found if len(found) > seen else []

    messages = await eventually(codes, what="look-up code SMS")
    assert messages[-1]["json"]["to"] == case.phone
    return re.search(r"验证码(\d{6})", messages[-1]["json"]["text"]).group(1)


async def test_the_link_shows_the_answer_rates_once_and_refuses_a_second_use(notify, infra, receiver, topic) -> None:
    case, token, _ = await closed_with_answer(notify, infra, receiver)
    page = await notify.client.get("/citizen/rate", params={"case": case.id, "round": 0, "token": token})
    assert page.status_code == 200 and "接诉即办" in page.text
    assert page.headers["referrer-policy"] == "no-referrer" and "default-src 'none'" in page.headers["content-security-policy"]
    assert "http" not in re.sub(r'lang="zh-CN"', "", page.text)  # no third-party asset, no tracker

    view = (await notify.client.get("/api/v1/citizen/rating", params={"case": case.id, "token": token})).json()
    assert view["tracking_no"] == case.tracking_no and view["round"] == 0
    assert view["phone_masked"] == "138****2222"
    assert view["answer"].startswith("路灯线路已修复") and "13912345678" not in view["answer"]
    assert view["public_summary"] == "路灯已修复"

    rated = await notify.client.post(f"/api/v1/cases/{case.id}/rating", json={"token": token, "rating": "基本满意", "comment": "修得快"})
    assert rated.status_code == 201, rated.text
    [event] = await events_of(topic, case, "case.rated")
    assert (event.payload.rating.value, event.payload.source, event.payload.round) == ("基本满意", "app", 0)

    again = await notify.client.get("/api/v1/citizen/rating", params={"case": case.id, "token": token})
    assert again.status_code == 409 and again.json()["type"].endswith("rating-token-used")
    other = await notify.client.get("/api/v1/citizen/rating", params={"case": "case-nobody", "token": token})
    assert other.status_code == 403  # bound to its case


async def test_a_look_up_needs_the_code_sent_to_the_appeals_phone(notify, infra, receiver) -> None:
    case, _, _ = await closed_with_answer(notify, infra, receiver)
    unknown = await notify.client.post("/api/v1/citizen/lookup/code", json={"tracking_no": "XC-20260101-NOBODY"})
    sent = await notify.client.post("/api/v1/citizen/lookup/code", json={"tracking_no": case.tracking_no})
    assert sent.status_code == unknown.status_code == 202 and sent.json() == unknown.json()  # tells nobody what exists
    code = await code_from_sms(receiver, case)

    too_soon = await notify.client.post("/api/v1/citizen/lookup/code", json={"tracking_no": case.tracking_no})
    assert too_soon.status_code == 429 and int(too_soon.headers["retry-after"]) > 0

    found = await notify.client.post("/api/v1/citizen/lookup", json={"tracking_no": case.tracking_no, "code": code})
    assert found.status_code == 200, found.text
    view = found.json()
    assert view["status"] == "closed" and view["status_label"] == "已销号公示"
    assert view["phone_masked"] == "138****2222"
    labels = [e["label"] for e in view["timeline"]]
    assert labels[:2] == ["已收到诉求", "已受理"] and labels[-1] == "已销号公示" and "已办结答复" in labels
    assert "13912345678" not in found.text and "13800002222" not in found.text

    spent = await notify.client.post("/api/v1/citizen/lookup", json={"tracking_no": case.tracking_no, "code": code})
    assert spent.status_code == 403 and spent.json()["type"].endswith("lookup-code-none")


async def test_three_wrong_codes_lock_the_look_up(notify, infra, receiver) -> None:
    case, _, at = await closed_with_answer(notify, infra, receiver)
    assert (await notify.client.post("/api/v1/citizen/lookup/code", json={"tracking_no": case.tracking_no})).status_code == 202
    code = await code_from_sms(receiver, case)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = [await notify.client.post("/api/v1/citizen/lookup", json={"tracking_no": case.tracking_no, "code": wrong}) for _ in range(3)]
    assert [a.json()["type"].rsplit("-", 1)[-1] for a in answers] == ["wrong", "wrong", "locked"]
    assert [a.json()["tries_left"] for a in answers] == [2, 1, 0]
    right = await notify.client.post("/api/v1/citizen/lookup", json={"tracking_no": case.tracking_no, "code": code})
    assert right.status_code == 403 and right.json()["type"].endswith("lookup-code-locked")
    # No new code while the locked one would still live; one comes once it has expired.
    held = await notify.client.post("/api/v1/citizen/lookup/code", json={"tracking_no": case.tracking_no})
    assert held.status_code == 429
    await set_clock(notify, at + timedelta(minutes=11))
    assert (await notify.client.post("/api/v1/citizen/lookup/code", json={"tracking_no": case.tracking_no})).status_code == 202
    fresh = await code_from_sms(receiver, case, seen=1)
    assert (await notify.client.post("/api/v1/citizen/lookup", json={"tracking_no": case.tracking_no, "code": fresh})).status_code == 200


async def test_in_chromium_at_a_phones_size(notify, infra, receiver) -> None:
    from playwright.async_api import async_playwright, expect

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium package")
    SHOTS.mkdir(parents=True, exist_ok=True)
    case, _, _ = await closed_with_answer(notify, infra, receiver)
    [closing] = [m for m in await receiver.messages(path="/sms", contains=case.tracking_no) if "销号" in m["json"]["text"]]
    link = re.search(r"https?://\S+", closing["json"]["text"]).group(0)
    # The link as the SMS carries it, on the running notify (its NOTIFY_RATING_URL here is the default base).
    link = notify.url + link[link.index("/citizen/rate"):]

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN")
            outside: list[str] = []
            context.on("request", lambda r: None if r.url.startswith(notify.url) else outside.append(r.url))
            page = await context.new_page()
            await page.goto(link)
            await expect(page.get_by_test_id("answer")).to_contain_text("路灯线路已修复")
            await expect(page.get_by_test_id("phone")).to_have_text("138****2222")
            assert "13912345678" not in await page.content()
            await page.screenshot(path=str(SHOTS / "rate.png"), full_page=True)
            await page.get_by_label("满意", exact=True).check()
            await page.fill("#comment", "当晚就亮了，谢谢")
            await page.click("#rate-submit")
            await expect(page.locator("#rate-thanks")).to_be_visible()
            await page.screenshot(path=str(SHOTS / "thanks.png"), full_page=True)
            # No sideways scrolling at 375 px.
            assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

            await page.goto(link)  # the same link again
            await expect(page.locator("#rate-refused")).to_contain_text("已使用过")
            await expect(page.locator("#rate-form")).to_be_hidden()
            await page.screenshot(path=str(SHOTS / "used.png"), full_page=True)

            await page.click("text=查询诉求办理进度")
            await page.fill("#tracking-no", case.tracking_no)
            await page.click("#send-code")
            code = await code_from_sms(receiver, case)
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            await page.fill("#code", wrong)
            await page.click("#lookup-submit")
            await expect(page.locator("#lookup-error")).to_contain_text("还可尝试2次")
            await page.fill("#code", code)
            await page.click("#lookup-submit")
            await expect(page.get_by_test_id("result-status")).to_have_text("已评价")
            await expect(page.get_by_test_id("timeline")).to_contain_text("已销号公示")
            await page.screenshot(path=str(SHOTS / "lookup.png"), full_page=True)
            assert outside == []  # nothing asked of another site
        finally:
            await browser.close()


async def test_the_timeline_and_status_come_from_one_statement_even_when_either_is_missing(notify, infra, receiver) -> None:
    """The look-up reads both in one statement (one moment): a case with a status and no
    timeline yet, one with neither, and one with both, in the timeline's order."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from notify import repository
    from shared.db import case_status

    case, _, _ = await closed_with_answer(notify, infra, receiver)
    async with AsyncSession(notify.runtime.engine) as session, session.begin():
        await session.execute(case_status.insert().values(
            case_id="c-status-only", status="dispatched", events_applied=1, last_event_type="case.dispatched", last_event_at=datetime.now(UTC)
        ))
        assert await repository.timeline_and_status(session, "c-status-only") == ([], "dispatched")
        assert await repository.timeline_and_status(session, "c-nothing") == ([], None)
        entries, status = await repository.timeline_and_status(session, case.id)
        assert status == "closed"
        assert [e["event_type"] for e in entries][:2] == ["case.received", "case.accepted"]
        assert entries[-1]["event_type"] == "case.closed" and all(e["case_id"] == case.id for e in entries)
        await session.rollback()
