"""A bounded inbox (issue #21 item 6): months of events through one service, inbox rows flat.

``python -m scoring`` (it handles every lifecycle type and has no causes to wait for) runs on
a fresh database and a topic of its own, with the default retentions (outbox 7 days, inbox
outbox + 24 h = 8 days) and its inbox pruned every half second instead of every 5 minutes.
A simulated day: one day's lifecycle events (whole cases, from ``bench.scoring_replay``)
go on the topic; once the service's inbox holds them all, a day passes — every
``processed_at`` is set back by one day — and the service's own periodic pruning removes
what is now older than the retention. The rows kept are read after every day.

The same days are pushed through a second scoring, on a fresh database and topic, whose inbox
retention is set so far out that nothing expires: the baseline the inbox grows along without
pruning. A day's inbox rows are waited for the same way in both.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from bench.core import Context, Figure, say
from bench.procs import Child, service_env
from bench.scoring_replay import lifecycle_events
from services.dev.devstack import free_port
from shared import events as ev
from shared.bus import TopicSpec, ensure_topics, new_producer
from shared.cloudevents import to_message
from shared.settings import INBOX_MARGIN

DAYS = 60  # at full scale: two months
EVENTS_PER_DAY = 2_000
QUICK_DAYS = 20
OUTBOX_RETENTION = timedelta(days=7)  # the default
RETENTION = OUTBOX_RETENTION + INBOX_MARGIN  # the default inbox retention
NEVER_HOURS = 10_000_000.0  # the unpruned baseline: ids expire after ~1,100 years
REPORT_DAYS = (1, 7, 8, 9, 14, 30, 45, 60)

# Rows the inbox took in today (processed_at not set back yet).
_TODAY = "SELECT count(*) FROM processed_events WHERE processed_at > now() - interval '12 hours'"
_EXPIRED = "SELECT count(*) FROM processed_events WHERE processed_at < now() - make_interval(secs => $1)"


async def inbox(ctx: Context) -> dict[str, Figure]:
    quick = ctx.timing.scale < 1
    days = QUICK_DAYS if quick else DAYS
    per_day = max(300, int(EVENTS_PER_DAY * ctx.timing.scale * 4)) if quick else EVENTS_PER_DAY
    say(f"inbox: generating {days} days × {per_day:,} lifecycle events")
    events, _ = lifecycle_events(days * per_day, seed=21)
    daily = [events[d * per_day : (d + 1) * per_day] for d in range(days)]
    pruned = await _run(ctx, "pruned", daily, retention_hours=None)
    kept = await _run(ctx, "unpruned", daily, retention_hours=NEVER_HOURS)
    return _figures(days, per_day, pruned, kept)


async def _run(ctx: Context, name: str, daily: list[list[ev.EventBase]], *, retention_hours: float | None) -> dict[str, Any]:
    servers = ctx.broker.bootstrap_servers
    topic = f"bench-inbox-{name}"
    database = f"bench_inbox_{name}"
    await ensure_topics(servers, [TopicSpec(topic, 12)])
    url = ctx.postgres.url_for(database)
    port = free_port()
    extra = {"inbox_prune_seconds": "0.5", "outbox_retention_days": str(OUTBOX_RETENTION.days)}
    if retention_hours is not None:
        extra["inbox_retention_hours"] = str(retention_hours)
    retention_s = (retention_hours * 3600) if retention_hours is not None else RETENTION.total_seconds()
    env = service_env("scoring", database_url=url, bootstrap_servers=servers, port=port, topic=topic, **extra)
    server = Child(f"scoring-{name}", [sys.executable, "-m", "scoring"], env=env, log_path=ctx.log_dir / f"inbox-{name}.log")
    db: asyncpg.Connection | None = None
    producer = new_producer(servers, f"bench-inbox-{name}")
    rows: list[int] = []
    started = time.monotonic()
    try:
        await server.wait_ok(f"http://127.0.0.1:{port}/ready")
        db = await asyncpg.connect(url)
        await producer.start()
        for day, batch in enumerate(daily, start=1):
            sent = [await producer.send(topic, m.value, key=m.key, headers=m.headers) for m in map(to_message, batch)]
            await asyncio.gather(*sent)
            await _until(lambda: _at_least(db, _TODAY, len(batch)), what=f"{name} day {day}: its events in the inbox")
            # A day passes, for the inbox: everything applied so far is a day older.
            await db.execute("UPDATE processed_events SET processed_at = processed_at - interval '1 day'")
            # The service's own pruning (every 0.5 s here) removes what the day made expire.
            await _until(lambda: _at_most(db, _EXPIRED, 0, retention_s), what=f"{name} day {day}: expired ids pruned")
            rows.append(await db.fetchval("SELECT count(*) FROM processed_events"))
            if day in REPORT_DAYS or day == len(daily):
                say(f"inbox ({name}): day {day}: {rows[-1]:,} rows kept")
        pruned_total = await _pruned_metric(port)
        size = await db.fetchval("SELECT pg_total_relation_size('processed_events')")
    finally:
        await producer.stop()
        if db is not None:
            await db.close()
        server.stop()
    return {"rows": rows, "pruned_metric": pruned_total, "bytes": size, "seconds": time.monotonic() - started}


async def _at_least(db: asyncpg.Connection, query: str, n: int, *args: Any) -> bool:
    return (await db.fetchval(query, *args)) >= n


async def _at_most(db: asyncpg.Connection, query: str, n: int, *args: Any) -> bool:
    return (await db.fetchval(query, *args)) <= n


async def _until(check, *, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)


async def _pruned_metric(port: int) -> float | None:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    found = re.search(r'^jiesu_inbox_pruned_events_total\{service="scoring"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else None


def _series(rows: list[int]) -> str:
    days = [d for d in REPORT_DAYS if d < len(rows)] + [len(rows)]
    return ", ".join(f"day {d}: {rows[d - 1]:,}" for d in days)


def _figures(days: int, per_day: int, pruned: dict[str, Any], kept: dict[str, Any]) -> dict[str, Figure]:
    rows, base = pruned["rows"], kept["rows"]
    total = days * per_day
    window = RETENTION.days
    # Flat: once the retention has filled, the rows kept neither grow past the retention's
    # worth of days (+1: the day just applied) nor fall below it less a day (nothing younger
    # than the retention is pruned: read after a day has passed, the ids of the last 8 days
    # are those applied on 7 of the simulated days).
    steady = rows[window:] or rows[-1:]
    flat = (window - 1) * per_day <= min(steady) and max(steady) <= (window + 1) * per_day
    return {
        "inbox_rows_pruned": Figure(
            f"scoring's inbox after {days} simulated days, pruned (retention {RETENTION.days} days)",
            rows[-1], "rows",
            detail=(
                f"{per_day:,} events a day, {total:,} in all; rows kept {_series(rows)}; max after day {window}: "
                f"{max(steady):,}, min {min(steady):,}; pruned by the service (its metric): "
                f"{pruned['pruned_metric'] or 0:,.0f}; table and index {pruned['bytes'] / 2**20:.1f} MiB"
            ),
            compare_with=("inbox_rows_unpruned",),
            target=f"flat: {window - 1} to {window + 1} days' events kept once {window} days have passed",
            met=flat,
            data={"rows": rows, "per_day": per_day, "days": days, "pruned_metric": pruned["pruned_metric"], "bytes": pruned["bytes"]},
        ),
        "inbox_rows_unpruned": Figure(
            f"scoring's inbox after the same {days} days, nothing expiring (baseline)",
            base[-1], "rows",
            detail=f"rows kept {_series(base)}; table and index {kept['bytes'] / 2**20:.1f} MiB",
            baseline=True,
            data={"rows": base, "bytes": kept["bytes"]},
        ),
    }
