"""The platform's figure: appeals from intake to a dispatch order (交办单), every service running.

All five services run as their own processes on one topic, each with its own database.
Intake is driven open-loop with distinct streetlamp appeals in 城关镇 (the catalogue sends
them to 住建局), and the bench reads the topic itself: for each case, the time from its
``case.received`` to its ``case.dispatched`` (the broker's record timestamps, set by each
producer when it published) is that case's end-to-end lag. Memory of every service is read
idle and again after the load.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from aiokafka import AIOKafkaConsumer

from bench.core import Context, Figure, ms, percentile, say
from bench.loadgen import Spec
from bench.procs import Child, cpu_text, drive
from services.devstack import free_port
from shared.tasks import stop_task
from shared.cloudevents import header

SERVICES = ("intake", "dispatch", "sla", "scoring", "notify")
TOPIC = "bench-pipeline"
TARGET_RATE = 500  # cases/s from intake to a dispatch order …
TARGET_P99_S = 2.0  # … with p99 lag under this

APPEAL = {
    "title": "城东路{n}号路灯不亮",
    "description": "忻城县城关镇城东社区城东路{n}号门前的路灯坏了，晚上很黑。",
    "channel": "app",
    "contact": {"name": "韦先生", "phone": "13812348000"},
    "location": {"address": "忻城县城关镇城东社区城东路{n}号"},
}


def _env(ctx: Context, name: str, port: int) -> dict[str, str]:
    prefix = f"{name.upper()}_"
    env = {k: v for k, v in os.environ.items() if not k.endswith(("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"))}
    env.update({
        f"{prefix}DATABASE_URL": ctx.postgres.url_for(f"bench_pipeline_{name}"),
        f"{prefix}KAFKA_BOOTSTRAP_SERVERS": ctx.broker.bootstrap_servers,
        f"{prefix}KAFKA_TOPIC": TOPIC,
        f"{prefix}PORT": str(port),
        f"{prefix}LOG_LEVEL": "WARNING",
    })  # fmt: skip
    if name == "intake":
        # Every appeal is a distinct matter (only identical texts would merge), and one
        # generator with one phone must not meet the abuse limits.
        env |= {"INTAKE_DUPLICATE_SIMILARITY": "1.0", "INTAKE_CITIZEN_RATE_LIMIT": "0/1", "INTAKE_CLIENT_RATE_LIMIT": "0/1"}
    return env


async def pipeline(ctx: Context) -> dict[str, Figure]:
    ports = {name: free_port() for name in SERVICES}
    children: dict[str, Child] = {}
    try:
        for name in SERVICES:
            children[name] = Child(
                name, [sys.executable, "-m", name], env=_env(ctx, name, ports[name]), log_path=ctx.log_dir / f"pipeline-{name}.log"
            )
        await asyncio.gather(*(children[n].wait_ok(f"http://127.0.0.1:{ports[n]}/ready") for n in SERVICES))
        await asyncio.sleep(3)
        idle = {name: child.rss_mib() for name, child in children.items()}
        say("pipeline: idle RSS " + ", ".join(f"{n} {v:.0f} MiB" for n, v in idle.items()))
        async with _TopicWatch(ctx.broker.bootstrap_servers) as watch:
            rate = ctx.timing.rates[0]
            spec = Spec(f"pipeline @ {rate:.0f}/s", ports["intake"], "/api/v1/appeals", APPEAL, ctx.timing.step * 2,
                        rate=rate, grace=ctx.timing.grace, vary=True)  # fmt: skip
            result = await drive(spec, server=children["intake"], work_dir=ctx.work_dir)
            accepted = result["statuses"].get("201", 0)
            await watch.until(lambda: watch.dispatched_count() >= accepted, timeout=120)
        loaded = {name: child.rss_mib() for name, child in children.items()}
        return _figures(rate, accepted, result, watch, idle, loaded)
    finally:
        for child in children.values():
            child.stop()


class _TopicWatch:
    """Reads the topic from the start: when each case was received and dispatched."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.consumer = AIOKafkaConsumer(TOPIC, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest")
        self.received: dict[str, int] = {}
        self.dispatched: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _TopicWatch:
        await self.consumer.start()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await stop_task(self._task)
        await self.consumer.stop()

    async def _read(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batch.values():
                for record in records:
                    kind = header(record.headers, "ce_type")
                    case = header(record.headers, "ce_subject")
                    if kind == "case.received":
                        self.received.setdefault(case, record.timestamp)
                    elif kind == "case.dispatched":
                        self.dispatched.setdefault(case, record.timestamp)

    def dispatched_count(self) -> int:
        return len(self.dispatched)

    async def until(self, check, timeout: float, stalled_after: float = 15) -> None:
        """Until ``check()`` holds, ``timeout`` passes, or nothing new was dispatched for ``stalled_after`` s."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while not check() and time.monotonic() < deadline:
            if self.dispatched_count() != last:
                last, last_change = self.dispatched_count(), time.monotonic()
            elif time.monotonic() - last_change > stalled_after:
                say(f"pipeline: no dispatch order for {stalled_after:.0f} s; counting what arrived")
                return
            await asyncio.sleep(0.2)

    def lags_s(self) -> list[float]:
        return sorted((self.dispatched[c] - self.received[c]) / 1000 for c in self.dispatched if c in self.received)


def _figures(rate: float, accepted: int, result: dict[str, Any], watch: _TopicWatch, idle, loaded) -> dict[str, Figure]:
    lags = watch.lags_s()
    dispatched = len(lags)
    span = (max(watch.dispatched.values()) - min(watch.received.values())) / 1000 if dispatched else 0.0
    per_s = dispatched / span if span else 0.0
    p50, p99 = percentile(lags, 0.5), percentile(lags, 0.99)
    memory = ", ".join(f"{n} {idle[n]:.0f}→{loaded[n]:.0f}" for n in SERVICES)
    return {
        "pipeline_rate": Figure(
            f"intake → dispatch order, {rate:.0f}/s offered", per_s, "cases/s",
            detail=(
                f"{dispatched} of {len(watch.received)} filed appeals dispatched ({accepted} answered 201 within the "
                f"grace, the rest later); lag p50 {ms(p50 * 1000 if p50 is not None else None)}, "
                f"p99 {ms(p99 * 1000 if p99 is not None else None)}; intake {cpu_text(result['cpu'])}"
            ),
            compare_with=("asyncpg_8",),
            target=f"≥ {TARGET_RATE}/s sustained with p99 lag < {TARGET_P99_S:.0f} s",
            met=dispatched == len(watch.received) and per_s >= TARGET_RATE and p99 is not None and p99 < TARGET_P99_S,
            data={"accepted": accepted, "filed": len(watch.received), "dispatched": dispatched, "lag_p50_s": p50, "lag_p99_s": p99, "span_s": span},
        ),
        "services_rss": Figure(
            "memory of each service, idle → after the load", max(loaded.values()), "MiB (largest)",
            detail=f"RSS in MiB: {memory}",
            data={"idle_mib": idle, "loaded_mib": loaded},
        ),
    }
