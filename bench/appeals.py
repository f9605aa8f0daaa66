"""Intake's figure: appeals accepted per second, at fixed arrival rates, as its own process.

The service runs exactly as deployed (``python -m intake``: its own database, migrations,
the outbox relay and its consumer all running), and is driven open-loop: a fixed arrival
rate whatever the answers, latency from each request's scheduled time. Each next step
waits until the service is quiet again, so none inherits the previous one's queue. A
closed-loop run (32 in flight) gives its capacity, and the outbox must be empty a few
seconds after the load: every accepted appeal reached the topic.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import asyncpg

from bench.baselines import APPEAL
from bench.core import Context, Figure, ms, say
from bench.loadgen import Spec
from bench.procs import Child, cpu_text, drive
from services.dev.devstack import free_port

PATH = "/api/v1/appeals"
DATABASE = "bench_intake"
TARGET_RATE = 1500  # accepted/s …
TARGET_P99_MS = 100  # … with p99 under this …
TARGET_RATIO = 0.55  # … and at least this share of the 8-connection asyncpg rate
DRAIN_WITHIN_S = 10  # the outbox is empty this long after the load at the latest

# Written under the targets table when a target is missed (bench.report).
WHY_MISSED = {
    "intake_sustained": (
        "not met. On 2026-11-29 one process sustained 1,500/s (capacity 1,749/s, 15.6% of that run's bare FastAPI "
        "route). Measured 2026-12-07 16:05: 250/s sustained with p99 under 100 ms (500/s: p99 774 ms), capacity "
        "610/s, 8.1% of this run's bare route: about twice the CPU per appeal against the same runs' baselines (the "
        "machine also ran 1.4–1.8× slower today: bare route 7,544 against 11,192 req/s, `asyncpg_8` 5,910 against "
        "10,818 tx/s). The largest addition since is the learned subject model (intake.model, 2026-12-06). Its "
        "prediction cost 0.91 ms of CPU through scikit-learn's transform, 40% of it input checks; "
        "SubjectModel._tfidf builds the same rows in 0.45 ms for the whole prediction (same-run intake bench, old "
        "then new: capacity 444 → 644/s, CPU at 100/s 53% → 40% of a core). The rest is spread over the middleware "
        "stack, filing (8–12% in py-spy profiles), the relay and the event loop. Filing through the unit of work "
        "(2026-12-07) measured the same as before within noise (three alternated runs). The ratio part (55% of "
        "`asyncpg_8`) is out of reach here in any case: intake would have to do its work in less CPU than the bare "
        "route, on two cores shared with PostgreSQL, the broker and the load generator."
    ),
}


async def intake_appeals(ctx: Context) -> dict[str, Figure]:
    port = free_port()
    server = Child("intake", [sys.executable, "-m", "intake"], env=service_env(ctx, port, DATABASE), log_path=ctx.log_dir / "intake.log")
    try:
        await server.wait_ok(f"http://127.0.0.1:{port}/ready")
        say(f"intake ready on port {port} (log {server.log_path})")
        db = await asyncpg.connect(ctx.postgres.url_for(DATABASE))
        try:
            return await _measure(ctx, server, port, db)
        finally:
            await db.close()
    finally:
        server.stop()


def service_env(ctx: Context, port: int, database: str) -> dict[str, str]:
    """Our environment, minus anything that could point intake at other servers."""
    foreign = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
    # No OTEL_* from our environment either: the tracing phase switches tracing on on purpose.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "OTEL_")) and k not in foreign}
    return env | {
        "INTAKE_DATABASE_URL": ctx.postgres.url_for(database),
        "INTAKE_KAFKA_BOOTSTRAP_SERVERS": ctx.broker.bootstrap_servers,
        "INTAKE_PORT": str(port),
        "INTAKE_LOG_LEVEL": "WARNING",
        # One generator, one phone number: the abuse limits would measure themselves.
        "INTAKE_CITIZEN_RATE_LIMIT": "0/1",
        "INTAKE_CLIENT_RATE_LIMIT": "0/1",
    }


async def _measure(ctx: Context, server: Child, port: int, db: asyncpg.Connection) -> dict[str, Figure]:
    timing = ctx.timing
    say(f"intake warm-up: {timing.warmup * 2:.0f} s at 50/s")
    await drive(Spec("intake warm-up", port, PATH, APPEAL, timing.warmup * 2, rate=50), server=server, work_dir=ctx.work_dir)
    await _settle(db)

    steps = []
    for rate in timing.rates:
        spec = Spec(f"intake @ {rate:.0f}/s", port, PATH, APPEAL, timing.step, rate=rate, grace=timing.grace)
        step = _step_result(rate, await drive(spec, server=server, work_dir=ctx.work_dir))
        step["settled_s"] = await _settle(db)
        say(f"intake @ {rate:.0f}/s: {step['accepted_per_s']:.0f} accepted/s, p99 {ms(step['p99_ms'])}, errors {step['errors']}")
        steps.append(step)

    say(f"intake capacity: 32 in flight, {timing.warmup + timing.measure:.0f} s")
    capacity = await drive(
        Spec("intake, 32 in flight", port, PATH, APPEAL, timing.measure, concurrency=32, warmup=timing.warmup),
        server=server, work_dir=ctx.work_dir,
    )
    drain_s = await _outbox_drained(db)
    figures = {f"intake_at_{step['offered_per_s']:.0f}": _step_figure(step) for step in steps}
    figures["intake_capacity"] = _capacity_figure(capacity, server)
    figures["intake_sustained"] = _sustained_figure(steps, ctx)
    figures["intake_outbox_drain"] = await _drain_figure(db, drain_s)
    return figures


async def _settle(db: asyncpg.Connection, timeout: float = 120) -> float:
    """Seconds until no appeal is being filed any more and the outbox is empty.

    Requests the generator gave up on are still filed by the server; waiting for them
    makes every step start from a quiet service instead of inheriting the last one's queue.
    """
    started, last = time.monotonic(), None
    while time.monotonic() - started < timeout:
        filed, unsent = await db.fetchrow(
            "SELECT (SELECT count(*) FROM appeals), (SELECT count(*) FROM outbox WHERE sent_at IS NULL)"
        )
        if filed == last and unsent == 0:
            break
        last = filed
        await asyncio.sleep(0.25)
    return time.monotonic() - started


def _step_result(rate: float, result: dict[str, Any]) -> dict[str, Any]:
    accepted = result["statuses"].get("201", 0)
    return {
        "offered_per_s": rate,
        "accepted_per_s": accepted / result["elapsed_s"],
        "errors": result["sent"] - accepted,  # non-201 answers, broken connections and unanswered requests
        **result,
    }


def _sustained(step: dict[str, Any]) -> bool:
    p99 = step["p99_ms"]
    return step["errors"] == 0 and p99 is not None and p99 < TARGET_P99_MS


def _step_figure(step: dict[str, Any]) -> Figure:
    rate = step["offered_per_s"]
    unanswered = f" ({step['unanswered']} unanswered)" if step["unanswered"] else ""
    detail = (
        f"p50 {ms(step['p50_ms'])}, p99 {ms(step['p99_ms'])}, errors {step['errors']}{unanswered}; "
        f"{'sustained' if _sustained(step) else 'NOT sustained'}; quiet again {step['settled_s']:.1f} s later; "
        f"{cpu_text(step['cpu'])}; generator at most {step['generator_late_ms']:.0f} ms behind schedule"
    )
    return Figure(
        f"intake, {rate:.0f}/s offered (open loop)", step["accepted_per_s"], "appeals/s", detail, ("asyncpg_8",), data=step
    )


def _capacity_figure(result: dict[str, Any], server: Child) -> Figure:
    accepted = result["statuses"].get("201", 0)
    rss = server.rss_mib()
    detail = (
        f"p50 {ms(result['p50_ms'])}, p99 {ms(result['p99_ms'])}, errors {result['answered'] - accepted}; "
        f"{cpu_text(result['cpu'])}; intake RSS {rss:.0f} MiB after the load"
    )
    return Figure(
        "intake capacity: 32 in flight (closed loop)", accepted / result["elapsed_s"], "appeals/s", detail,
        ("uvicorn", "asyncpg_8"), data={**result, "rss_mib": rss},
    )


def _sustained_figure(steps: list[dict[str, Any]], ctx: Context) -> Figure:
    """The highest offered rate served in full with p99 under the target, against the project's target."""
    best = max((s for s in steps if _sustained(s)), key=lambda s: s["offered_per_s"], default=None)
    rate = best["offered_per_s"] if best else 0.0
    baseline = ctx.value("asyncpg_8")
    ratio = rate / baseline if baseline else 0.0
    return Figure(
        f"intake, best sustained rate (every request 201, p99 < {TARGET_P99_MS} ms)", rate, "appeals/s",
        detail=f"p99 {ms(best['p99_ms'])} at that rate" if best else "none of the offered rates was sustained",
        compare_with=("asyncpg_8",),
        target=f"≥ {TARGET_RATE:,}/s with p99 < {TARGET_P99_MS} ms, and ≥ {TARGET_RATIO:.0%} of asyncpg with 8 connections",
        met=rate >= TARGET_RATE and ratio >= TARGET_RATIO,
        data={"ratio_to_asyncpg_8": ratio},
    )


async def _outbox_drained(db: asyncpg.Connection, timeout: float = 120) -> float:
    """Seconds until the outbox has no unsent row (polled every 50 ms)."""
    started = time.monotonic()
    while await db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
        if time.monotonic() - started > timeout:
            break
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def _drain_figure(db: asyncpg.Connection, drain_s: float) -> Figure:
    unsent = await db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
    events = await db.fetchval("SELECT count(*) FROM outbox")
    appeals = await db.fetchval("SELECT count(*) FROM appeals")
    received = await db.fetchval("SELECT count(*) FROM outbox WHERE event_type = 'case.received'")
    return Figure(
        "intake outbox drained after the last load", drain_s, "s",
        detail=f"{unsent} unsent of {events:,} events; {appeals:,} appeals stored, {received:,} case.received events",
        target=f"0 unsent within {DRAIN_WITHIN_S} s (every accepted appeal reached the topic)",
        met=unsent == 0 and drain_s <= DRAIN_WITHIN_S and received == appeals,
        data={"unsent": unsent, "events": events, "appeals": appeals, "received_events": received},
    )
