"""This machine's baselines, measured in the same run as the services' figures.

A service figure alone says little on a shared 2-core machine whose speed drifts; divided
by what the bare parts do minutes earlier on the same machine, it says how much of the
machine the service's own code costs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid

import asyncpg
from aiokafka import AIOKafkaConsumer

from bench.core import Context, Figure, ms, percentile, say
from bench.loadgen import Spec
from bench.procs import Child, cpu_text, drive
from services.dev.devstack import free_port
from shared.bus import TopicSpec, ensure_topics, new_producer

APPEAL = {
    "title": "村口路灯不亮",
    "description": "路灯坏了三天",
    "channel": "app",
    "contact": {"name": "韦先生", "phone": "13812348000"},
}

# ~300 bytes of jsonb, about what one appeal row carries.
ROW = json.dumps(
    {**APPEAL, "status": "triage", "tracking_no": "XC-20261122-000123", "case_id": str(uuid.UUID(int=1)), "note": "x" * 40},
    ensure_ascii=False,
)


# --------------------------------------------------------------------------- PostgreSQL


async def asyncpg_rates(ctx: Context) -> dict[str, Figure]:
    """Durable transactions with 1 and with 8 connections: the ceiling for anything that commits."""
    dsn = ctx.postgres.url_for("postgres")
    setup = await asyncpg.connect(dsn)
    try:
        await setup.execute(
            "DROP TABLE IF EXISTS bench_tx; CREATE TABLE bench_tx (id bigserial PRIMARY KEY, body jsonb NOT NULL)"
        )
    finally:
        await setup.close()
    figures = {}
    for connections in (1, 8):
        say(f"asyncpg, {connections} connection(s): {ctx.timing.warmup + ctx.timing.measure:.0f} s")
        rate, latencies = await _transactions(dsn, connections, ctx.timing.warmup, ctx.timing.measure)
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        figures[f"asyncpg_{connections}"] = Figure(
            label=f"asyncpg, {connections} connection{'s' if connections > 1 else ''}: BEGIN; INSERT; COMMIT",
            value=rate,
            unit="tx/s",
            detail=f"p50 {ms(p50)}, p99 {ms(p99)}",
            baseline=True,
            data={"p50_ms": p50, "p99_ms": p99, "transactions": len(latencies)},
        )
    return figures


async def _transactions(dsn: str, connections: int, warmup: float, seconds: float) -> tuple[float, list[float]]:
    """Transactions per second after ``warmup``, and each one's latency in ms (ascending)."""
    conns = [await asyncpg.connect(dsn) for _ in range(connections)]
    count_from = time.perf_counter() + warmup
    stop = count_from + seconds
    latencies: list[float] = []

    async def worker(conn: asyncpg.Connection) -> None:
        while (began := time.perf_counter()) < stop:
            async with conn.transaction():
                await conn.execute("INSERT INTO bench_tx (body) VALUES ($1::jsonb)", ROW)
            if began >= count_from:
                latencies.append((time.perf_counter() - began) * 1000)

    try:
        await asyncio.gather(*(worker(conn) for conn in conns))
    finally:
        await asyncio.gather(*(conn.close() for conn in conns))
    return len(latencies) / (time.perf_counter() - count_from), sorted(latencies)


# --------------------------------------------------------------------------- broker


async def broker_rates(ctx: Context) -> dict[str, Figure]:
    """Produce with the relay's producer settings, then one group member reads it all back."""
    topic = "bench-broker"
    servers = ctx.broker.bootstrap_servers
    await ensure_topics(servers, [TopicSpec(topic, 12)])
    say(f"broker produce: {ctx.timing.warmup + ctx.timing.measure:.0f} s")
    produced, produce_rate = await _produce(servers, topic, ctx.timing.warmup, ctx.timing.measure)
    say(f"broker consume: {produced:,} messages")
    consume_rate = await _consume(servers, topic, produced)
    return {
        "broker_produce": Figure(
            "broker produce: aiokafka, acks=all, 500 B + 5 headers, keyed over 12 partitions", produce_rate, "msg/s",
            detail="awaited in batches of 500, as the outbox relay does", baseline=True,
        ),
        "broker_consume": Figure(
            "broker consume: one member of a group reads them all", consume_rate, "msg/s",
            detail=f"{produced:,} messages, timed from the first batch",
            baseline=True, data={"messages": produced},
        ),
    }


def _message(i: int) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    key = str(uuid.uuid4()).encode()  # like a case id: spreads over the partitions
    headers = [
        ("ce_id", str(uuid.uuid4()).encode()),
        ("ce_type", b"case.received"),
        ("ce_source", b"/jiesu/intake"),
        ("ce_specversion", b"1.0"),
        ("content-type", b"application/json"),
    ]
    return key, (b'{"n":%d,"pad":"' % i).ljust(498, b"x") + b'"}', headers


async def _produce(servers: str, topic: str, warmup: float, seconds: float) -> tuple[int, float]:
    """(messages produced in all, messages/s after the warm-up)."""
    producer = new_producer(servers, "bench-producer")
    await producer.start()
    count_from = time.perf_counter() + warmup
    total = counted = 0
    try:
        while (began := time.perf_counter()) < count_from + seconds:
            messages = map(_message, range(total, total + 500))
            batch = [await producer.send(topic, value, key=key, headers=headers) for key, value, headers in messages]
            await asyncio.gather(*batch)
            total += len(batch)
            if began >= count_from:
                counted += len(batch)
        return total, counted / (time.perf_counter() - count_from)
    finally:
        await producer.stop()


async def _consume(servers: str, topic: str, expected: int, timeout: float = 120, group: str = "bench-consume") -> float:
    """Messages/s from the first batch on: joining the group is not reading."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        deadline = time.perf_counter() + timeout
        seen, first = 0, None  # first: (time, count) when the first batch arrived
        while seen < expected:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"consumed {seen:,} of {expected:,} messages in {timeout:.0f} s")
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            seen += sum(len(records) for records in batches.values())
            if first is None and seen:
                first = (time.perf_counter(), seen)
        assert first is not None
        return (seen - first[1]) / (time.perf_counter() - first[0])
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- HTTP


async def bare_uvicorn(ctx: Context) -> dict[str, Figure]:
    """A one-route FastAPI app under uvicorn, 32 requests in flight: the HTTP ceiling."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log"]
    server = Child("bare uvicorn", args, env=dict(os.environ), log_path=ctx.log_dir / "bare-uvicorn.log")
    try:
        await server.wait_ok(f"http://127.0.0.1:{port}/health")
        spec = Spec(
            "uvicorn, 32 in flight", port, "/appeals", APPEAL, ctx.timing.measure, concurrency=32, warmup=ctx.timing.warmup
        )
        result = await drive(spec, server=server, work_dir=ctx.work_dir)
    finally:
        server.stop()
    errors = result["answered"] - result["statuses"].get("201", 0)
    return {
        "uvicorn": Figure(
            "bare uvicorn + FastAPI: POST answered 201, 32 in flight",
            result["statuses"].get("201", 0) / result["elapsed_s"],
            "req/s",
            detail=f"p50 {ms(result['p50_ms'])}, p99 {ms(result['p99_ms'])}, errors {errors}; {cpu_text(result['cpu'])}",
            baseline=True,
            data=result,
        )
    }
