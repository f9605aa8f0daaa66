"""The risk page (风险研判 · 民情地图) in real headless Chromium: insight, the directory, the
issuer and the console as their own processes; a burst of streetlamp appeals at one spot on
the topic becomes a finding, and the county centre's dispatcher reads on the page the lit
village, the finding's sentence, the trend and the proposed 每月一题, and the open early
warning the finding gave (预警信息处置), which 住建局's head acknowledges from the same page;
then the centre sends a task down from the finding (下派任务) and sees its items listed, and
住建局 sees its own item of it.
Another county's centre reads none of it. Screenshots go to test-artifacts/console/ like the others.

The appeals are dated on the last working days before the moment the test runs (computed, not
written down), because the page asks about "now" as a user does; nothing here rots."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, time
from pathlib import Path

import pytest

from services.insight.detect import workdays_ending
from services.insight.tests.test_findings import THRESHOLDS, appeal
from services.insight.trends import last_workday
from shared.actors import actor_headers
from shared.testing import Infra, eventually, publish
from shared.workdays import LOCAL, WorkingCalendar
from tests.console.test_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, SHOTS, console_stack, sign_in
from tests.e2e.harness import Platform

pytestmark = pytest.mark.slow


def risk_stack(infra: Infra, logs: Path) -> contextlib.AbstractAsyncContextManager[tuple[Platform, str]]:
    """Insight alone (with the tests' thresholds) behind the console, the directory and the issuer."""
    settings = {"insight": {"THRESHOLDS": json.dumps(THRESHOLDS)}}
    return console_stack(infra, logs, services=("insight",), settings=settings, poll_seconds=5)


async def test_the_centre_reads_the_lit_village_the_findings_sentence_and_the_theme(infra: Infra, tmp_path_factory) -> None:
    from playwright.async_api import async_playwright, expect

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium package")
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    calendar = WorkingCalendar()
    days = workdays_ending(calendar, last_workday(calendar, datetime.now(LOCAL).date()), 3)
    async with risk_stack(infra, tmp_path_factory.mktemp("risk-logs")) as (platform, base), async_playwright() as pw:
        # Three reports of the streetlamps on 西宁街 (城中社区's first grid) on three working days: a same-spot finding.
        events = [e for day in days for e in appeal(datetime.combine(day, time(10), LOCAL))[1]]
        await publish(infra.bootstrap_servers, platform.topic, *events)
        centre = actor_headers("xc-dispatcher", "centre_dispatcher", "LB-XC-ZZZX")

        async def found() -> list[dict]:
            return (await platform.insight.get("/api/v1/findings", headers=centre)).json()["items"]

        [finding] = await eventually(found, timeout=60, what="the finding in insight")
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
            page = await context.new_page()
            page.on("pageerror", lambda exc: errors.append(f"centre page: {exc}"))
            await sign_in(page, base, "demo-centre-dispatcher")
            await page.goto(f"{base}/#/risk")
            village = page.locator('[data-testid="risk-map"] .risk-tile[data-code="LB-XC-CG-CZ"]')
            await expect(village).to_have_class("risk-tile village lit", timeout=15_000)
            assert await village.get_attribute("data-heat") == "1"
            await expect(page.locator('.risk-tile[data-code="LB-XC-CG"]')).to_have_class("risk-tile township lit")
            await expect(page.locator('.risk-tile[data-code="LB-XC-CG-CD"]')).to_have_class("risk-tile village")  # 城东社区: quiet
            await expect(page.locator('[data-testid="risk-legend"]')).to_contain_text("示意图")
            card = page.locator(f'[data-finding-id="{finding["finding_id"]}"]')
            await expect(card.locator(".finding-sentence")).to_have_text(finding["explanation"])
            assert "西宁街" in finding["explanation"]
            await expect(card).to_contain_text("网格 城中")  # the grid by its name, not its code
            theme = page.locator('[data-testid="risk-theme"]')
            await expect(theme.locator(".theme-sentence")).to_contain_text("建议将“基础设施”列为")
            await expect(theme).to_contain_text("城中社区 3 件")
            await expect(theme).not_to_contain_text("null")  # no runners-up here: nothing printed for them
            await expect(page.locator('[data-testid="trend-table"]')).to_contain_text("基础设施")
            await expect(page.locator('[data-testid="trend-table"] svg.spark')).to_have_count(1)
            await expect(page.locator('[data-testid="risk-tasks"]')).to_contain_text("暂无下派任务")

            # 预警信息处置: the finding opened a warning for 住建局, which handles the streetlamps; the
            # centre sees it open, with nothing to do yet (the unit acts first).
            async def opened() -> list[dict]:
                return (await platform.insight.get("/api/v1/warnings", headers=centre)).json()["items"]

            [warning] = await eventually(opened, timeout=30, what="the warning in insight")
            row = page.locator(f'[data-testid="risk-warnings"] tr[data-warning-id="{warning["warning_id"]}"]')
            await expect(row).to_contain_text("忻城县住房和城乡建设局")
            await expect(row).to_contain_text("待签收")
            await expect(row).to_contain_text("签收期限")
            await expect(row.locator("button")).to_have_count(0)
            await page.screenshot(path=SHOTS / "11-risk.png", full_page=True)

            # The unit's head acknowledges it (签收) from the page; the row moves on to 处置.
            unit = await (await browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")).new_page()
            unit.on("pageerror", lambda exc: errors.append(f"unit page: {exc}"))
            await sign_in(unit, base, "demo-dept-head")
            await unit.goto(f"{base}/#/risk")
            mine = unit.locator(f'[data-testid="risk-warnings"] tr[data-warning-id="{warning["warning_id"]}"]')
            await expect(mine.locator("button")).to_have_count(1, timeout=15_000)
            await mine.locator('button[data-action="acknowledge"]').click()
            await expect(mine).to_have_attribute("data-state", "acknowledged", timeout=15_000)
            await expect(mine).to_contain_text("处置期限")
            await expect(mine.locator('button[data-action="handle"]')).to_be_visible()
            await unit.screenshot(path=SHOTS / "11b-risk-unit-acknowledged.png", full_page=True)
            stored = (await platform.insight.get(f"/api/v1/warnings/{warning['warning_id']}", headers=centre)).json()
            assert (stored["state"], stored["acknowledged_on_time"]) == ("acknowledged", True)
            await page.reload()
            await expect(row).to_have_attribute("data-state", "acknowledged", timeout=15_000)
            await expect(row.locator("button")).to_have_count(0)  # the centre closes only once it is handled

            # 下派任务: the centre turns the finding into a task for 住建局 (the unit the finding names,
            # already ticked) and 城中社区, and sees it listed with each item's state.
            await card.locator('button[data-action="open-task"]').click()
            form = card.locator('[data-testid="task-form"]')
            await expect(form.locator('input[value="LB-XC-ZJJ"]')).to_be_checked()
            await expect(form.locator('textarea[name="instructions"]')).to_have_value(finding["explanation"])
            await form.locator('input[name="title"]').fill("排查西宁街沿线路灯")
            await form.locator('select[name="resolution_class"]').select_option("complex")
            await form.locator('input[value="LB-XC-CG-CZ"]').check()
            await expect(form.locator('input[value="LB-XC-ZZZX"]')).to_have_count(0)  # a centre is not a unit to send to
            await form.locator('button[data-action="send-task"]').click()
            task_card = page.locator('[data-testid="risk-tasks"] .task')
            await expect(task_card).to_have_count(1, timeout=15_000)
            await expect(task_card).to_contain_text("排查西宁街沿线路灯")
            await expect(task_card).to_contain_text("复杂类")
            await expect(task_card).to_contain_text("已办结 0/2")
            items = task_card.locator("tbody tr")
            await expect(items).to_have_count(2)
            await expect(task_card.locator('tr[data-item-unit="LB-XC-ZJJ"]')).to_contain_text("忻城县住房和城乡建设局")
            await expect(task_card.locator('tr[data-item-unit="LB-XC-CG-CZ"]')).to_contain_text("城中社区")
            [task] = (await platform.insight.get("/api/v1/tasks", headers=centre)).json()["items"]
            assert (task["finding_id"], task["title"], task["resolution_class"]) == (finding["finding_id"], "排查西宁街沿线路灯", "complex")
            assert sorted((i["unit"], i["street"], i["state"]) for i in task["items"]) == [
                ("LB-XC-CG-CZ", "西宁街", "issued"), ("LB-XC-ZJJ", "西宁街", "issued")]
            # The department's item is about the finding's place, so 城关镇 (its township) verifies it.
            [department] = [i for i in task["items"] if i["unit"] == "LB-XC-ZJJ"]
            assert (department["grid"], department["township"]) == ("LB-XC-CG-CZ-G01", "LB-XC-CG")
            for i in ("LB-XC-ZJJ", "LB-XC-CG-CZ"):  # each item as insight has it, state by state
                await expect(task_card.locator(f'tr[data-item-unit="{i}"]')).to_have_attribute("data-state", "issued")
            await page.screenshot(path=SHOTS / "11c-risk-task-sent.png", full_page=True)

            # 住建局 sees the task with its own item only, and cannot send work down.
            await unit.reload()
            theirs = unit.locator(f'[data-testid="risk-tasks"] .task[data-task-id="{task["task_id"]}"]')
            await expect(theirs.locator("tbody tr")).to_have_count(1, timeout=15_000)
            await expect(theirs.locator('tr[data-item-unit="LB-XC-ZJJ"]')).to_contain_text("已下达")
            await expect(theirs).to_contain_text("已办结 0/2")
            await expect(unit.locator('button[data-action="open-task"]')).to_have_count(0)

            # 武宣县's centre: its own townships, none of 忻城县's, and no finding, trend or theme from it.
            other = await (await browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")).new_page()
            other.on("pageerror", lambda exc: errors.append(f"other centre page: {exc}"))
            await sign_in(other, base, "demo-centre-dispatcher-wx")
            await other.goto(f"{base}/#/risk")
            await expect(other.locator('.risk-tile[data-code="LB-WX-TW"]')).to_be_visible(timeout=15_000)
            await expect(other.locator('.risk-tile[data-code^="LB-XC"]')).to_have_count(0)
            await expect(other.locator('[data-testid="risk-findings"] .finding')).to_have_count(0)
            await expect(other.locator('[data-testid="risk-theme"]')).to_contain_text("无建议题目")
            await expect(other.locator('[data-testid="risk-trends"]')).to_contain_text("近期无诉求")
            await expect(other.locator('[data-testid="risk-warnings"]')).to_contain_text("暂无未办结的预警")
            await expect(other.locator('[data-testid="risk-tasks"]')).to_contain_text("暂无下派任务")
            await other.screenshot(path=SHOTS / "12-risk-other-county.png", full_page=True)
        finally:
            await browser.close()
    assert not errors, errors
