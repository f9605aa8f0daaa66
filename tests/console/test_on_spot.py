"""当场办结 in real headless Chromium (1小时诉求服务模式; 谁接待、谁负责; docs/rules.md): the clerk
at 江龙村's 五事 window files a simple appeal, opens its case page, closes it on the spot with the
citizen's 满意 and sees it closed (status and timeline); a colleague at the same window opens
the same open case and is not offered 当场办结, which belongs to the person who received it.
Every service runs as its own process (tests/console/test_browser.py's stack); screenshots go
to test-artifacts/console/."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.actors import actor_headers
from shared.testing import Infra
from tests.console.test_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, SHOTS, console_stack, sign_in

pytestmark = pytest.mark.slow

RECEIVER = "demo-village-staff"  # 江龙村干部蓝某, at the village's 五事 window
COLLEAGUE = "demo-village-staff-jl2"  # 江龙村干部覃某: the same village, not the receiver
SIMPLE = {
    "title": "咨询医保缴费怎么办理", "description": "村民到村五事窗口咨询：今年的城乡居民医保在哪里缴、交多少钱。",
    "channel": "window", "contact": {"name": "甘长庆", "phone": "13800004444"},
    "location": {"address": "武宣县通挽镇江龙村"}, "simple": True,
}  # fmt: skip
ANSWER = "已当场告知缴费标准和手机缴费方法，并帮助完成缴费。"


async def test_the_receiver_closes_a_simple_window_appeal_on_the_spot_and_a_colleague_is_not_offered_it(
    infra: Infra, tmp_path_factory
) -> None:
    from playwright.async_api import async_playwright, expect

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium package")
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    async with console_stack(infra, tmp_path_factory.mktemp("on-spot-logs")) as (platform, base), async_playwright() as pw:
        # The window files it as its receiver (the console has no filing form): a simple one.
        filed = await platform.intake.post("/api/v1/appeals", json=SIMPLE,
                                           headers=actor_headers(RECEIVER, "village_staff", "LB-WX-TW-JL"))  # fmt: skip
        assert filed.status_code == 201, filed.text
        case_id = filed.json()["case_id"]
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            contexts = [await browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai") for _ in range(2)]
            receiver, colleague = [await c.new_page() for c in contexts]
            receiver.on("pageerror", lambda exc: errors.append(f"receiver page: {exc}"))
            colleague.on("pageerror", lambda exc: errors.append(f"colleague page: {exc}"))
            on_spot = '[data-action="close-on-spot"]'

            await sign_in(receiver, base, RECEIVER)
            await receiver.goto(f"{base}/#/case/{case_id}")
            await expect(receiver.locator('[data-testid="case-title"]')).to_have_text(SIMPLE["title"], timeout=15_000)
            await expect(receiver.locator(on_spot)).to_be_visible()
            await expect(receiver.locator(".facts")).to_contain_text("1小时办结期限")

            # The colleague reads the same open case (a village's staff see its cases), but the
            # action is the receiver's alone: no 当场办结 form is offered.
            await sign_in(colleague, base, COLLEAGUE)
            await colleague.goto(f"{base}/#/case/{case_id}")
            await expect(colleague.locator('[data-testid="case-title"]')).to_have_text(SIMPLE["title"], timeout=15_000)
            await expect(colleague.locator('[data-testid="timeline"]')).to_be_visible()
            await expect(colleague.locator(on_spot)).to_have_count(0)
            await colleague.screenshot(path=SHOTS / "20-on-spot-colleague.png", full_page=True)

            # The receiver closes it with the citizen there, who is satisfied (满意, the form's default).
            form = receiver.locator(on_spot)
            await form.locator('textarea[name="answer"]').fill(ANSWER)
            await form.locator('select[name="rating"]').select_option("满意")
            await receiver.screenshot(path=SHOTS / "21-on-spot-form.png", full_page=True)
            await form.locator('button[type="submit"]').click()

            # The page reloads: closed (销号) on the spot; the answer, the close and the citizen's rating on its timeline.
            await expect(receiver.locator('[data-testid="case-status"]')).to_have_text("已销号", timeout=15_000)
            timeline = receiver.locator('[data-testid="timeline"]')
            for label in ("已办结答复", "已销号公示", "已评价"):
                await expect(timeline).to_contain_text(label)
            await expect(receiver.locator(on_spot)).to_have_count(0)
            await receiver.screenshot(path=SHOTS / "22-on-spot-closed.png", full_page=True)
            shown = (await platform.intake.get(f"/api/v1/appeals/{case_id}", headers=actor_headers(RECEIVER, "village_staff", "LB-WX-TW-JL"))).json()
            assert [e["type"] for e in shown["timeline"]][-3:] == ["case.resolved", "case.closed", "case.rated"]
        finally:
            await browser.close()
    assert not errors, errors
