"""The console in real headless Chromium (Debian's package, driven by Playwright) over the
whole platform — every service as its own process, plus the directory, the issuer and the
console: a dispatcher watches the live board, an appeal filed at intake appears on it within
seconds, the dispatcher dispatches it from the case page, the department signs it from its
queue, and the dispatcher's board changes without a reload. Screenshots of every page go to
test-artifacts/console/."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.testing import Infra, ServiceProcess, eventually, free_port, service_env, unique
from tests.e2e.harness import SERVICE_NAMES, Platform, running_platform

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


#: What the console reads, each at its CONSOLE_<NAME>_URL.
CONSOLE_READS = ("intake", "dispatch", "sla", "scoring", "notify", "insight")
DEAD = "http://127.0.0.1:9"  # where the console reads what the stack does not run: nothing listens there


@contextlib.asynccontextmanager
async def console_stack(
    infra: Infra, logs: Path, *, services: tuple[str, ...] = SERVICE_NAMES, settings: dict[str, dict[str, str]] | None = None,
    poll_seconds: int = 1,
) -> AsyncIterator[tuple[Platform, str]]:
    """The platform (``services`` and ``settings`` as ``running_platform`` takes them), plus the
    directory, the issuer and the console as processes; all stopped at the end."""
    async with running_platform(infra, logs, services=services, settings=settings) as platform:
        directory_port, issuer_port, console_port = free_port(), free_port(), free_port()
        extra = {
            "directory": ServiceProcess("services.directory", {
                **service_env(infra, "DIRECTORY_", topic=platform.topic, database=unique("e2e_directory"), port=directory_port),
                "DIRECTORY_ORG_TOPIC": unique("org"),
            }, directory_port, logs / "directory.log"),
            "issuer": ServiceProcess("services.dev.issuer", {
                **service_env(infra, "ISSUER_", topic=platform.topic, database="unused", port=issuer_port),
            }, issuer_port, logs / "issuer.log"),
        }  # fmt: skip
        urls = {f"CONSOLE_{name.upper()}_URL": platform.url(name) if name in platform.processes else DEAD for name in CONSOLE_READS}
        console_env = {
            **service_env(infra, "CONSOLE_", topic=platform.topic, database="unused", port=console_port), **urls,
            "CONSOLE_DIRECTORY_URL": extra["directory"].url, "CONSOLE_ISSUER_URL": extra["issuer"].url,
            "CONSOLE_POLL_SECONDS": str(poll_seconds), "CONSOLE_SESSION_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
        }  # fmt: skip
        extra["console"] = ServiceProcess("services.console", console_env, console_port, logs / "console.log")
        try:
            for process in extra.values():
                process.start()
            for process in extra.values():
                await process.wait_ready(timeout=120)
            yield platform, extra["console"].url
        finally:
            for process in extra.values():
                process.stop()


async def sign_in(page, base: str, user: str) -> None:
    await page.goto(f"{base}/#/login")
    await page.click(f'button[data-user="{user}"]')
    await page.wait_for_selector('[data-testid="who"]')


async def tile(page, key: str) -> int:
    return int(await page.inner_text(f'[data-testid="total-{key}"] .num'))


async def department_row(page, name: str) -> list[str]:
    row = page.locator('[data-testid="by-department"] tbody tr', has_text=name)
    return [text.strip() for text in await row.locator("td").all_inner_texts()]


async def test_a_dispatcher_sees_a_new_appeal_dispatches_it_and_sees_the_department_sign_it(infra: Infra, tmp_path_factory) -> None:
    from playwright.async_api import async_playwright, expect

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium package")
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    async with console_stack(infra, tmp_path_factory.mktemp("console-logs")) as (platform, base), async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            centre = await browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
            board = await centre.new_page()
            board.on("pageerror", lambda exc: errors.append(f"dispatcher page: {exc}"))
            await board.goto(base)
            await expect(board.locator('button[data-user="demo-centre-dispatcher"]')).to_be_visible()
            await board.screenshot(path=SHOTS / "01-login.png", full_page=True)
            await sign_in(board, base, "demo-centre-dispatcher")
            await expect(board.locator('[data-testid="live-status"]')).to_contain_text("实时", timeout=15_000)
            before = await tile(board, "received_today")

            # A located streetlamp (the catalogue sends it to 住建局 on its own), and an appeal no
            # catalogue line can place, which waits for the dispatcher.
            lamp = await platform.intake.post("/api/v1/appeals", json={
                "title": "西宁街路灯不亮", "description": "城关镇城中社区西宁街的路灯坏了，晚上很黑。", "channel": "app",
                "contact": {"name": "韦先生", "phone": "13812340001"}, "location": {"lat": 24.0685, "lng": 108.661},
            })  # fmt: skip
            assert lamp.status_code == 201, lamp.text
            title = f"反映情况{uuid.uuid4().hex[:6]}"
            filed_at = time.monotonic()
            waiting = await platform.intake.post("/api/v1/appeals", json={
                "title": title, "description": "有事情需要政府帮忙协调，请联系我。", "channel": "app",
                "contact": {"name": "蓝女士", "phone": "13812340002"},
            })  # fmt: skip
            assert waiting.status_code == 201, waiting.text
            case_id = waiting.json()["case_id"]
            card = board.locator(f'[data-testid="cards-waiting"] [data-case-id="{case_id}"]')
            await expect(card).to_be_visible(timeout=15_000)  # pushed over SSE: no reload
            appeared = time.monotonic() - filed_at
            print(f"\nconsole: the new appeal was on the dispatcher's board {appeared:.1f} s after intake answered 201")
            assert appeared < 10
            await expect(board.locator('[data-testid="total-received_today"] .num')).to_have_text(str(before + 2), timeout=10_000)
            await expect(board.locator('[data-testid="by-department"]')).to_contain_text("住建局", timeout=30_000)
            await board.screenshot(path=SHOTS / "02-board.png", full_page=True)

            # The case page: the dispatcher sends it to 住建局.
            await card.click()
            await expect(board.locator('[data-testid="case-title"]')).to_have_text(title)
            dispatch_form = board.locator('form[data-action="dispatch"]')
            await dispatch_form.locator('select[name="unit"]').select_option("LB-XC-ZJJ")
            await dispatch_form.locator('textarea[name="instructions"]').fill("请住建局核实处理")
            await dispatch_form.locator('button[type="submit"]').click()
            order = board.locator(".order", has_text="住房和城乡建设局")
            await expect(order).to_be_visible(timeout=15_000)
            order_no = await order.get_attribute("data-order-no")
            await expect(board.locator('form[data-action="dispatch"]')).to_have_count(0)
            await board.screenshot(path=SHOTS / "03-case.png", full_page=True)
            # A second dispatch of the same case is refused by dispatch, and the page shows its problem.
            answer = await board.evaluate(
                """async ([id]) => (await fetch(`/api/dispatch/cases/${id}/dispatch`, {method: "POST",
                   headers: {"Content-Type": "application/json", "X-Console": "1"}, body: JSON.stringify({unit: "LB-XC-ZJJ"})})).status""",
                [case_id],
            )  # fmt: skip
            assert answer == 409

            # Back on the board: it waits on 住建局 now.
            await board.goto(f"{base}/#/board")
            await expect(board.locator(f'[data-testid="cards-waiting"] [data-case-id="{case_id}"]')).to_have_count(0, timeout=15_000)

            async def to_sign_at_zjj() -> list[str] | None:
                row = await department_row(board, "住建局")
                return row if row and int(row[1]) >= 1 else None

            zjj_before = await eventually(to_sign_at_zjj, timeout=15, what="住建局 with an order to sign")
            version_before = int(await board.get_attribute('[data-testid="live-status"]', "data-version") or 0)

            # The department, in its own browser, signs from its queue.
            dept = await browser.new_context(viewport=DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai")
            clerk = await dept.new_page()
            clerk.on("pageerror", lambda exc: errors.append(f"clerk page: {exc}"))
            await sign_in(clerk, base, "demo-dept-clerk")
            await expect(clerk.locator('[data-testid="queue"]')).to_contain_text(order_no, timeout=15_000)
            await clerk.screenshot(path=SHOTS / "04-unit-queue.png", full_page=True)
            signed_at = time.monotonic()
            await clerk.click(f'button[data-sign="{order_no}"]')
            await expect(clerk.locator("#toast")).to_contain_text("已签收")
            await expect(clerk.locator('[data-testid="queue"]', has_text=order_no)).to_have_count(0, timeout=10_000)

            # The dispatcher's board changes by itself: one fewer to sign at 住建局, one more in progress.
            to_sign_before, in_progress_before = int(zjj_before[1]), int(zjj_before[2])

            async def changed() -> bool:
                row = await department_row(board, "住建局")
                return int(row[1]) == to_sign_before - 1 and int(row[2]) == in_progress_before + 1

            await eventually(changed, timeout=15, interval=0.2, what="the board to show the signature")
            print(f"console: the signature showed on the dispatcher's board {time.monotonic() - signed_at:.1f} s after the click")
            assert int(await board.get_attribute('[data-testid="live-status"]', "data-version")) > version_before, "pushed, not reloaded"
            await board.screenshot(path=SHOTS / "05-board-after-signing.png", full_page=True)

            # The case page as the department sees it now: the actions of a signed order.
            await clerk.goto(f"{base}/#/case/{case_id}")
            await expect(clerk.locator('[data-testid="order-state"]')).to_have_text("已签收")
            await expect(clerk.locator(f'details[data-more="resolve-{order_no}"] summary')).to_have_text("办结答复")
            # A refused action shows the service's problem as it said it; an allowed one goes through.
            extension = clerk.locator(f'details[data-more="extension-{order_no}"]')
            await extension.locator("summary").click()
            await extension.locator('input[name="working_days"]').fill("20")
            await extension.locator('textarea[name="reason"]').fill("需要采购材料")
            await extension.locator('button[type="submit"]').click()
            problem = extension.locator('[data-testid="problem"]')
            await expect(problem).to_be_visible(timeout=10_000)
            await expect(problem).to_contain_text("422")
            await clerk.screenshot(path=SHOTS / "06-case-as-department.png", full_page=True)
            resolve = clerk.locator(f'details[data-more="resolve-{order_no}"]')
            await resolve.locator("summary").click()
            await resolve.locator('textarea[name="answer"]').fill("已电话联系群众，协调解决。")
            await resolve.locator('button[type="submit"]').click()
            await expect(clerk.locator('[data-testid="order-state"]')).to_have_text("已答复", timeout=10_000)

            # The other pages, as the dispatcher.
            await board.goto(f"{base}/#/map")
            await expect(board.locator('[data-testid="map"] .point')).not_to_have_count(0, timeout=15_000)
            await board.screenshot(path=SHOTS / "07-map.png", full_page=True)
            await board.goto(f"{base}/#/queues/LB-XC-ZJJ")
            await expect(board.locator('[data-testid="queue"], main p.muted').first).to_be_visible()
            # 个人绩效: the county centre sees 住建局's handling people — the clerk who just answered
            # (scoring applies the answer from the topic: look again until it has).
            people = board.locator('[data-testid="people"]')

            async def clerk_listed() -> bool:
                await expect(people).to_be_visible(timeout=15_000)
                if "住建局办事员李某" in await people.inner_text():
                    return True
                await board.reload()
                return False
            await eventually(clerk_listed, timeout=30, interval=1, what="the clerk in 住建局's people table")
            await board.screenshot(path=SHOTS / "08-queues-as-centre.png", full_page=True)
            await board.goto(f"{base}/#/bulletins")
            await expect(board.locator('[data-testid="bulletin-weekly"]')).to_be_visible(timeout=15_000)
            await expect(board.locator('[data-testid="trend-chart"]')).to_be_visible()
            await expect(board.locator('[data-testid="topic-of-the-month"]')).to_contain_text("每月一题")
            await board.screenshot(path=SHOTS / "09-bulletins.png", full_page=True)
            await board.click('button[data-kind="monthly"]')
            await expect(board.locator('[data-testid="bulletin-monthly"]')).to_contain_text("一月一点评")
            await board.screenshot(path=SHOTS / "09-bulletins-monthly.png", full_page=True)

            # A phone.
            phone = await browser.new_context(viewport=PHONE, locale="zh-CN", timezone_id="Asia/Shanghai", is_mobile=True)
            mobile = await phone.new_page()
            mobile.on("pageerror", lambda exc: errors.append(f"phone page: {exc}"))
            await sign_in(mobile, base, "demo-centre-dispatcher")
            await expect(mobile.locator('[data-testid="live-status"]')).to_contain_text("实时", timeout=15_000)
            width = await mobile.evaluate("document.documentElement.scrollWidth")
            wide = await mobile.evaluate(
                """() => [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > innerWidth + 1
                   ).slice(0, 5).map((e) => `${e.tagName}.${e.className}`)"""
            )  # fmt: skip
            assert width <= PHONE["width"] + 1, f"the board fits a phone's width (scrolls {width}px: {wide})"
            await mobile.screenshot(path=SHOTS / "10-board-phone.png", full_page=True)
        finally:
            await browser.close()
    assert not errors, errors
