"""One replica against two: how much a second process of intake and of dispatch adds on
this machine.

- intake: its capacity (32 requests in flight, closed loop) with one process, then with
  two processes sharing the database and the consumer group, the load split evenly
  between their ports (as a load balancer would); then two processes at intake's target
  rate, open loop, half the arrivals to each;
- dispatch: how fast it turns triaged cases into dispatch orders, as one member of its
  consumer group and as two — a burst of received/accepted/triaged events of distinct
  cases is published on a topic of its own and the orders are counted in its database.

On two cores a second process can only use what the first leaves idle: these figures say
which bottleneck each service hits (README, "Scaling a service").
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.baselines import APPEAL
from bench.appeals import TARGET_P99_MS, TARGET_RATE
from bench.core import Context, Figure, ms, say
from bench.loadgen import Spec
from bench.procs import Child, Progress, drive, service_env
from services.dev.devstack import free_port
from shared.cloudevents import to_message
from shared.events import (
    AcceptedData,
    CaseAccepted,
    CaseReceived,
    CaseTriaged,
    Channel,
    FiveMatters,
    Location,
    ReceivedData,
    TriagedData,
    make_event,
    system_actor,
)

IN_FLIGHT = 32
CASES = 4000  # dispatch burst at full scale
INTAKE = system_actor("intake")


async def replicas(ctx: Context) -> dict[str, Figure]:
    intake = {n: await _intake_capacity(ctx, n) for n in (1, 2)}
    at_target = await _intake_at_target(ctx)
    dispatch = {n: await _dispatch_rate(ctx, n) for n in (1, 2)}
    figures = {f"intake_replicas_{n}": _intake_figure(n, r, intake[1]) for n, r in intake.items()}
    figures["intake_replicas_2_sustained"] = _at_target_figure(at_target)
    figures |= {f"dispatch_replicas_{n}": _dispatch_figure(n, r, dispatch[1]) for n, r in dispatch.items()}
    return figures


# --------------------------------------------------------------------------- intake


async def _start(ctx: Context, name: str, module: str, count: int, env_of) -> list[tuple[Child, int]]:  # noqa: ANN001
    """``count`` processes of a service, started one after the other (the first migrates)."""
    started = []
    try:
        for k in range(count):
            port = free_port()
            child = Child(f"{name}-{k}", [sys.executable, "-m", module], env=env_of(port), log_path=ctx.log_dir / f"{name}-{count}x-{k}.log")
            started.append((child, port))
            await child.wait_ok(f"http://127.0.0.1:{port}/ready")
    except BaseException:
        for child, _ in started:
            child.stop()
        raise
    return started


async def _start_intake(ctx: Context, count: int, name: str) -> list[tuple[Child, int]]:
    url = ctx.postgres.url_for(f"bench_replicas_intake_{name}")
    return await _start(ctx, "intake", "intake", count, lambda port: service_env(
        "intake", database_url=url, bootstrap_servers=ctx.broker.bootstrap_servers, port=port,
        topic=f"bench-replicas-intake-{name.replace('_', '-')}", citizen_rate_limit="0/1", client_rate_limit="0/1",
    ))  # fmt: skip


async def _intake_capacity(ctx: Context, count: int) -> dict[str, Any]:
    children = await _start_intake(ctx, count, str(count))
    try:
        say(f"intake ×{count}: {IN_FLIGHT} in flight, {ctx.timing.warmup + ctx.timing.measure:.0f} s")
        loads = [
            Spec(f"intake ×{count} #{k}", port, "/api/v1/appeals", APPEAL, ctx.timing.measure,
                 concurrency=IN_FLIGHT // count, warmup=ctx.timing.warmup)
            for k, (_, port) in enumerate(children)
        ]  # fmt: skip
        results = await asyncio.gather(*(drive(spec, server=child, work_dir=ctx.work_dir) for spec, (child, _) in zip(loads, children, strict=True)))
        accepted = sum(r["statuses"].get("201", 0) for r in results)
        elapsed = max(r["elapsed_s"] for r in results)
        return {
            "accepted_per_s": accepted / elapsed,
            "errors": sum(r["answered"] - r["statuses"].get("201", 0) for r in results),
            "p99_ms": max((r["p99_ms"] or 0) for r in results),
            "server_cpu": [r["cpu"]["server"] for r in results],
            "rss_mib": [child.rss_mib() for child, _ in children],
        }
    finally:
        for child, _ in children:
            child.stop()


def _intake_figure(count: int, result: dict[str, Any], one: dict[str, Any]) -> Figure:
    gain = result["accepted_per_s"] / one["accepted_per_s"] if one["accepted_per_s"] else 0.0
    cpu = " + ".join(f"{c}%" for c in result["server_cpu"])
    return Figure(
        f"intake capacity with {count} replica{'s' if count > 1 else ''}, {IN_FLIGHT} in flight", result["accepted_per_s"],
        "appeals/s",
        detail=(f"{gain:.2f}× one replica; p99 {result['p99_ms']:.0f} ms, errors {result['errors']}; "
                f"intake CPU {cpu} of one core; RSS {', '.join(f'{m:.0f}' for m in result['rss_mib'])} MiB"),
        compare_with=("asyncpg_8",), data=result | {"gain_over_one": gain},
    )  # fmt: skip


async def _intake_at_target(ctx: Context) -> dict[str, Any]:
    """Two replicas at intake's target rate, open loop, half the arrivals to each (as a load
    balancer would), after a warm-up at 50/s each."""
    children = await _start_intake(ctx, 2, "2_open")
    rate = float(TARGET_RATE) if ctx.timing.rates[-1] >= TARGET_RATE else ctx.timing.rates[-1]
    try:
        warm = [Spec("intake ×2 warm-up", port, "/api/v1/appeals", APPEAL, ctx.timing.warmup * 2, rate=50) for _, port in children]
        await asyncio.gather(*(drive(spec, server=child, work_dir=ctx.work_dir) for spec, (child, _) in zip(warm, children, strict=True)))
        loads = [
            Spec(f"intake ×2 #{k} @ {rate / 2:.0f}/s", port, "/api/v1/appeals", APPEAL, ctx.timing.step,
                 rate=rate / 2, grace=ctx.timing.grace)
            for k, (_, port) in enumerate(children)
        ]  # fmt: skip
        results = await asyncio.gather(*(drive(spec, server=child, work_dir=ctx.work_dir) for spec, (child, _) in zip(loads, children, strict=True)))
        offered = sum(spec.rate * spec.seconds for spec in loads)
        accepted = sum(r["statuses"].get("201", 0) for r in results)
        p99s = [r["p99_ms"] for r in results]
        return {
            "offered_per_s": rate, "accepted_per_s": accepted / ctx.timing.step, "offered": offered, "accepted": accepted,
            # Each half's p99 bounds the whole's from above: at most 1% of each half is slower.
            "p99_ms": None if None in p99s else max(p99s), "p50_ms": max((r["p50_ms"] or 0) for r in results),
            "errors": int(offered) - accepted, "server_cpu": [r["cpu"]["server"] for r in results],
        }
    finally:
        for child, _ in children:
            child.stop()


def _at_target_figure(result: dict[str, Any]) -> Figure:
    p99 = result["p99_ms"]
    sustained = result["errors"] == 0 and p99 is not None and p99 < TARGET_P99_MS
    return Figure(
        f"intake with 2 replicas, {result['offered_per_s']:,.0f}/s offered (open loop, half to each)", result["accepted_per_s"],
        "appeals/s",
        detail=(f"{result['accepted']:,} of {result['offered']:,.0f} answered 201; p50 ≤ {ms(result['p50_ms'])}, "
                f"p99 ≤ {ms(p99)} (the larger half's); {'sustained' if sustained else 'NOT sustained'}; intake CPU "
                + " + ".join(f"{c}%" for c in result["server_cpu"]) + " of one core"),
        compare_with=("asyncpg_8",),
        target=f"≥ {TARGET_RATE:,}/s with p99 < {TARGET_P99_MS} ms (the rate and latency part of intake's target)",
        met=sustained and result["offered_per_s"] >= TARGET_RATE,
        data=result,
    )  # fmt: skip


# --------------------------------------------------------------------------- dispatch


def _case_events(n: int) -> list[Any]:
    """received → accepted → triaged of one streetlamp case in 城关镇 (the catalogue gives it
    to 住建局 at once)."""
    case_id = str(uuid.uuid4())
    place = Location(township="LB-XC-CG", village="LB-XC-CG-CZ", grid="LB-XC-CG-CZ-G01", street="西宁街")
    got = make_event(CaseReceived, case_id=case_id, producer="intake", actor=INTAKE, payload=ReceivedData(
        tracking_no=f"XC-20261129-{n:06d}", channel=Channel.app, title=f"路灯不亮 {n}", description="西宁街路灯坏了",
        location=place,
    ))  # fmt: skip
    accepted = make_event(CaseAccepted, producer="intake", actor=INTAKE, caused_by=got,
                          payload=AcceptedData(tracking_no=got.payload.tracking_no, notice="已受理"))  # fmt: skip
    triaged = make_event(CaseTriaged, producer="intake", actor=INTAKE, caused_by=got, payload=TriagedData(
        category=FiveMatters.annoyance, subject_class="infrastructure", location=place, confidence=0.9, region="LB-XC",
    ))  # fmt: skip
    return [got, accepted, triaged]


async def _dispatch_rate(ctx: Context, count: int) -> dict[str, Any]:
    database = f"bench_replicas_dispatch_{count}"
    topic = f"bench-replicas-dispatch-{count}"
    url = ctx.postgres.url_for(database)
    cases = max(100, int(CASES * ctx.timing.scale))
    children = await _start(ctx, "dispatch", "dispatch", count, lambda port: service_env(
        "dispatch", database_url=url, bootstrap_servers=ctx.broker.bootstrap_servers, port=port, topic=topic,
    ))  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=ctx.broker.bootstrap_servers, acks="all", linger_ms=2)
    db = await asyncpg.connect(url)
    await producer.start()
    try:
        events = [e for n in range(cases) for e in _case_events(n)]
        say(f"dispatch ×{count}: {cases:,} triaged cases on {topic}")
        started = time.monotonic()
        for i in range(0, len(events), 500):
            sends = []
            for event in events[i : i + 500]:
                message = to_message(event)
                sends.append(await producer.send(topic, message.value, key=message.key, headers=message.headers))
            await asyncio.gather(*sends)
        progress = Progress(f"dispatch ×{count} orders", cases)
        deadline = started + 600
        while (done := await db.fetchval("SELECT count(*) FROM orders")) < cases and time.monotonic() < deadline:
            progress.update(done)
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - started
        return {"cases": cases, "dispatched": done, "seconds": elapsed, "per_s": done / elapsed,
                "rss_mib": [child.rss_mib() for child, _ in children]}  # fmt: skip
    finally:
        await producer.stop()
        await db.close()
        for child, _ in children:
            child.stop()


def _dispatch_figure(count: int, result: dict[str, Any], one: dict[str, Any]) -> Figure:
    gain = result["per_s"] / one["per_s"] if one["per_s"] else 0.0
    return Figure(
        f"dispatch: triaged cases → orders with {count} replica{'s' if count > 1 else ''}", result["per_s"], "cases/s",
        detail=(f"{gain:.2f}× one replica; {result['dispatched']:,} of {result['cases']:,} dispatched in "
                f"{result['seconds']:.1f} s (published as one burst); RSS {', '.join(f'{m:.0f}' for m in result['rss_mib'])} MiB"),
        compare_with=("broker_consume",), data=result | {"gain_over_one": gain},
    )  # fmt: skip
