"""Scoring's rebuild (issue #7): replaying the topic into empty tables, against raw consume.

A topic of its own gets a known number of lifecycle events (≥ 200,000 at full scale) in
the mix of a county's month: appeals received → accepted → triaged → dispatched → signed →
progress → resolved → verified → closed → callback → rated, with returns and re-dispatch,
county calls (乡呼县应) and the township's rating of the department, yellow and red cards,
redo rounds, rejections, and grid workers' activity. The same run reads the whole topic
back with one bare consumer (the raw consume rate of *this* topic), then starts
``python -m scoring`` on it with its consumer group already at the end (its live consumer
has nothing to do, so the rebuild starts from empty tables and competes with nothing),
asks ``POST /api/v1/admin/rebuild`` and follows its progress. Afterwards the inbox must
hold every event and the facts every case: the rebuild read the topic in full.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.baselines import _consume
from bench.core import Context, Figure, say
from bench.procs import Child, Progress, machine_cpu_seconds, process_cpu_seconds, service_env
from services.dev.devstack import free_port
from shared import events as ev
from shared.actors import actor_headers
from shared.bus import TopicSpec, ensure_topics, new_producer
from shared.cloudevents import to_message
from shared.events import make_event, system_actor
from shared.orgdata import load_org

DATABASE = "bench_scoring"
TOPIC = "bench-scoring"
EVENTS = 240_000  # at scale 1
TARGET_RATE = 20_000

INTAKE, DISPATCH, SLA, NOTIFY, SCORING = (system_actor(s) for s in ("intake", "dispatch", "sla", "notify", "scoring"))
OPS = actor_headers("ops-bench", "ops")

# Written under the targets table when a target is missed (bench.report).
WHY_MISSED = {
    "scoring_rebuild": (
        "the replay fetches, decodes and plans the next batches (SCORING_REBUILD_BATCH_SIZE, 4,000 events) while "
        "the one before is written in one transaction of about 15 statements: the inbox, case_status and the case "
        "facts each folded per case into one MERGE, one set-based statement per other kind of fact; the cyclic "
        "garbage collector is paused during the replay. What is left is mostly Python on one core: decoding the "
        "events with pydantic is about a third of the service's time, then reading the records from the broker, "
        "planning and sending the statements and freeing each batch; decoding in a second process would be next. "
        "The machine was also busy with other work (see 'busy before the run')."
    ),
}


# ------------------------------------------------------------------------ the events


class _County:
    """A county of the demo organisation: its townships, their grids, its departments."""

    def __init__(self, code: str) -> None:
        org = load_org()
        self.code = code
        self.townships = [u.code for u in org.children(code) if u.kind == "township"]
        self.departments = [u.code for u in org.children(code) if u.kind == "department"]
        self.grids = {t: [u.code for u in org.of_kind("grid") if org.township_of(u.code) == t] for t in self.townships}


def _case_events(n: int, county: _County, rng: random.Random, start: datetime) -> list[ev.EventBase]:
    """One case's events in the order its producers write them, times a few minutes to days apart."""
    case = f"BC{n:07d}"
    township = rng.choice(county.townships)
    grid = rng.choice(county.grids[township])
    at = start + timedelta(seconds=rng.uniform(0, 28 * 86400))
    out: list[ev.EventBase] = []

    def add(cls, payload, actor, minutes: float = 5.0) -> ev.EventBase:
        nonlocal at
        at += timedelta(minutes=rng.uniform(0.5, 2) * minutes)
        event = make_event(cls, payload=payload, producer=actor.id.split(":", 1)[1], actor=actor, case_id=case, occurred_at=at)
        out.append(event)
        return event

    loc = ev.Location(township=township, grid=grid, street="西宁街")
    add(ev.CaseReceived, ev.ReceivedData(
        tracking_no=f"XC-{case}", channel=rng.choice(list(ev.Channel)), title="路灯不亮", description="村口路灯坏了三天",
        subject_class="streetlight", location=loc, contact_masked="138****8000"), INTAKE, 0)  # fmt: skip
    if rng.random() < 0.03:
        add(ev.CaseRejected, ev.RejectedData(reason_code="out_of_scope", reason="不属于受理范围"), INTAKE)
        return out
    add(ev.CaseAccepted, ev.AcceptedData(tracking_no=f"XC-{case}", notice="已受理"), INTAKE)
    add(ev.CaseTriaged, ev.TriagedData(
        category=rng.choice(list(ev.FiveMatters)), subject_class="streetlight", location=loc, confidence=0.9,
        region=county.code), INTAKE)  # fmt: skip
    unit = rng.choice(county.departments)
    order = 0

    def dispatch(to: str, redo_round: int = 0) -> str:
        nonlocal order
        order += 1
        number = f"JB-{case}-{order}"
        add(ev.CaseDispatched, ev.DispatchedData(order_no=number, unit=to, redo_round=redo_round), DISPATCH, 10)
        return number

    number = dispatch(unit)
    if rng.random() < 0.10:  # 退单, upheld, re-dispatched
        add(ev.CaseReturned, ev.ReturnedData(order_no=number, unit=unit, reason_code="not_ours", reason="非本单位职责"), DISPATCH, 30)
        add(ev.ReturnReviewed, ev.ReturnReviewedData(order_no=number, unit=unit, upheld=True), DISPATCH, 30)
        unit = rng.choice([d for d in county.departments if d != unit])
        number = dispatch(unit)
    late = rng.random() < 0.15
    if late:
        add(ev.SlaBreached, ev.SlaBreachedData(clock_id=f"{case}:sign:{unit}:0", clock=ev.ClockKind.sign, unit=unit, due_at=at + timedelta(minutes=5)), SLA, 60)
    add(ev.CaseSigned, ev.SignedData(order_no=number, unit=unit), DISPATCH, 90 if late else 20)
    call = rng.random() < 0.05
    if call:
        add(ev.CountyCalled, ev.CountyCalledData(call_id=f"CALL-{case}", township=township, units=[unit], reason="需要县级部门"), DISPATCH, 60)
    add(ev.ProgressReported, ev.ProgressReportedData(order_no=number, unit=unit, note="已联系群众", first_contact=True), DISPATCH, 120)
    if rng.random() < 0.15:
        add(ev.SlaWarning, ev.SlaWarningData(clock_id=f"{case}:resolve:{unit}:0", clock=ev.ClockKind.resolve, unit=unit, due_at=at + timedelta(days=1), threshold="yellow"), SLA, 600)
    if rng.random() < 0.08:
        add(ev.SlaBreached, ev.SlaBreachedData(clock_id=f"{case}:resolve:{unit}:0", clock=ev.ClockKind.resolve, unit=unit, due_at=at + timedelta(minutes=10)), SLA, 600)
    rounds = 2 if rng.random() < 0.05 else 1
    for round_ in range(rounds):
        if round_:
            add(ev.CaseReopened, ev.ReopenedData(reason="不满意", redo_round=round_, unit=unit), NOTIFY, 60)
            number = dispatch(unit, round_)
            add(ev.CaseSigned, ev.SignedData(order_no=number, unit=unit), DISPATCH, 20)
        add(ev.CaseResolved, ev.ResolvedData(order_no=number, unit=unit, answer="已修复", solved=rng.random() < 0.95), DISPATCH, 1500)
        add(ev.CaseVerified, ev.VerifiedData(verifier_unit=township), DISPATCH, 300)
        add(ev.CaseClosed, ev.ClosedData(public_summary="已修复"), DISPATCH, 5)
        rating = rng.choices(list(ev.Satisfaction), weights=(80, 15, 5))[0] if round_ == rounds - 1 else ev.Satisfaction.unsatisfied
        add(ev.CallbackCompleted, ev.CallbackCompletedData(reached=True, attempt=1, rating=rating, round=round_), NOTIFY, 1440)
        add(ev.CaseRated, ev.RatedData(rating=rating, round=round_, units=[unit]), NOTIFY, 1)
    if call:
        add(ev.UnitRated, ev.UnitRatedData(
            rater_unit=township, rated_unit=unit, direction="township_rates_department", call_id=f"CALL-{case}",
            rating=ev.Satisfaction.satisfied, score=5), SCORING, 60)  # fmt: skip
    return out


def _grid_activity(n: int, county: _County, rng: random.Random, start: datetime) -> ev.EventBase:
    township = rng.choice(county.townships)
    grid = rng.choice(county.grids[township])
    kind = rng.choice(["login", "info_update", "report", "patrol", "event_handled", "solved_on_spot"])
    data = ev.GridActivityData(worker_id=f"GW-{grid}-{n % 3}", grid=grid, kind=kind)
    return make_event(ev.GridActivity, payload=data, producer="intake", actor=INTAKE, occurred_at=start + timedelta(seconds=rng.uniform(0, 28 * 86400)))


def lifecycle_events(count: int, seed: int = 7) -> tuple[list[ev.EventBase], int]:
    """At least ``count`` events: whole cases (each case's events in order) and 5% grid
    activity, cases interleaved as they would be on a live topic. Returns (events, cases)."""
    rng = random.Random(seed)
    counties = [_County("LB-XC"), _County("LB-XB")]
    start = datetime(2026, 10, 1, tzinfo=UTC)
    cases: list[list[ev.EventBase]] = []
    total = n = 0
    progress = Progress("scoring: events generated", count)
    while total < count * 0.95:
        events = _case_events(n, counties[n % 2], rng, start)
        cases.append(events)
        total += len(events)
        n += 1
        progress.update(total)
    singles = [[_grid_activity(i, counties[i % 2], rng, start)] for i in range(count - total)] if count > total else []
    lanes = cases + singles
    rng.shuffle(lanes)
    # Interleave: each lane's next event, round after round, so a case's events spread over
    # the topic in order rather than sitting back to back.
    out: list[ev.EventBase] = []
    cursors = [0] * len(lanes)
    live = list(range(len(lanes)))
    window = 2000
    while live:
        active, live = live[:window], live[window:]
        while active:
            still = []
            for i in active:
                out.append(lanes[i][cursors[i]])
                cursors[i] += 1
                if cursors[i] < len(lanes[i]):
                    still.append(i)
            active = still
    return out, n


async def _produce(servers: str, events: list[ev.EventBase]) -> tuple[float, dict[int, int]]:
    """Seconds it took, and the end offset of every partition written."""
    producer = new_producer(servers, "bench-scoring")
    await producer.start()
    ends: dict[int, int] = {}
    started = time.monotonic()
    progress = Progress("scoring: events published", len(events))
    try:
        for at in range(0, len(events), 1000):
            messages = [to_message(e) for e in events[at : at + 1000]]
            sent = [await producer.send(TOPIC, m.value, key=m.key, headers=m.headers) for m in messages]
            for meta in await asyncio.gather(*sent):
                ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
            progress.update(at + len(messages))
        return time.monotonic() - started, ends
    finally:
        await producer.stop()


async def _park_group_at_end(servers: str, group: str, ends: dict[int, int]) -> None:
    """Commit the live group's offsets at the end of the topic: scoring's live consumer then
    starts with nothing to read, and the rebuild is the only thing reading the topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = {TopicPartition(TOPIC, p): offset for p, offset in ends.items()}
        consumer.assign(list(tps))
        await consumer.commit(tps)
    finally:
        await consumer.stop()


# ------------------------------------------------------------------------ the phase


async def scoring_rebuild(ctx: Context) -> dict[str, Figure]:
    servers = ctx.broker.bootstrap_servers
    count = max(5000, int(EVENTS * ctx.timing.scale))
    say(f"scoring: generating {count:,} lifecycle events")
    events, cases = lifecycle_events(count)
    await ensure_topics(servers, [TopicSpec(TOPIC, 12)])
    produce_s, ends = await _produce(servers, events)
    say(f"scoring: {len(events):,} events of {cases:,} cases on {TOPIC} in {produce_s:.1f} s; raw consume …")
    raw_rate = await _consume(servers, TOPIC, len(events), group="bench-scoring-raw")
    say(f"scoring: raw consume {raw_rate:,.0f} events/s")
    await _park_group_at_end(servers, "scoring", ends)

    port = free_port()
    url = ctx.postgres.url_for(DATABASE)
    env = service_env("scoring", database_url=url, bootstrap_servers=servers, port=port, topic=TOPIC)
    server = Child("scoring", [sys.executable, "-m", "scoring"], env=env, log_path=ctx.log_dir / "scoring.log")
    db: asyncpg.Connection | None = None
    try:
        await server.wait_ok(f"http://127.0.0.1:{port}/ready")
        say(f"scoring ready on port {port} (log {server.log_path}); rebuild …")
        db = await asyncpg.connect(url)
        status, wall, cpu = await _rebuild(port, server, len(events))
        facts = await db.fetchval("SELECT count(*) FROM case_facts")
        inbox = await db.fetchval("SELECT count(*) FROM processed_events")
        rss = server.peak_rss_mib()
    finally:
        if db is not None:
            await db.close()
        server.stop()
    return _figures(len(events), cases, raw_rate, produce_s, status, wall, cpu, facts, inbox, rss)


async def _rebuild(port: int, server: Child, expected: int) -> tuple[dict[str, Any], float, dict[str, int]]:
    base = f"http://127.0.0.1:{port}/api/v1/admin/rebuild"
    progress = Progress("scoring rebuild: events read", expected)
    async with httpx.AsyncClient(timeout=10) as client:
        cpu_before, machine_before = process_cpu_seconds(server.pid), machine_cpu_seconds()
        started = time.monotonic()
        answer = await client.post(base, headers=OPS)
        if answer.status_code != 202:
            raise RuntimeError(f"POST /admin/rebuild answered {answer.status_code}: {answer.text}")
        while True:
            await asyncio.sleep(0.25)
            answer = await client.get(base, headers=OPS)
            if answer.status_code != 200:
                raise RuntimeError(f"GET /admin/rebuild answered {answer.status_code}: {answer.text}")
            status = answer.json()
            progress.update(status.get("events_read", 0), f"{status.get('events_applied', 0):,} applied; {status.get('phase')}")
            if status["state"] != "running":
                break
        wall = time.monotonic() - started
    server_cpu = process_cpu_seconds(server.pid) - cpu_before
    machine = machine_cpu_seconds() - machine_before
    cpu = {"server": round(100 * server_cpu / wall), "rest": round(100 * max(0.0, machine - server_cpu) / wall)}
    if status["state"] != "done":
        raise RuntimeError(f"the rebuild ended {status['state']}: {status.get('error')}")
    return status, wall, cpu


def _figures(events, cases, raw_rate, produce_s, status, wall, cpu, facts, inbox, rss) -> dict[str, Figure]:
    replay_s = status.get("replay_seconds") or status["seconds"]
    rate = status["events_read"] / replay_s if replay_s else 0.0
    complete = status["events_read"] == events and inbox == events and facts == cases and not status["events_failed"]
    return {
        "scoring_raw_consume": Figure(
            "scoring's topic read raw: one member of a group reads it all", raw_rate, "events/s",
            detail=f"{events:,} lifecycle events of {cases:,} cases (published in {produce_s:.1f} s)",
            compare_with=("broker_consume",), baseline=True, data={"events": events, "cases": cases},
        ),
        "scoring_rebuild": Figure(
            "scoring rebuild: replay of the topic into empty tables", rate, "events/s",
            detail=(
                f"{status['events_read']:,} events read, {status['events_applied']:,} applied, {status['events_failed']} failed "
                f"in {replay_s:.1f} s of replay ({wall:.1f} s from the request, stopping the live consumer and emptying the "
                f"tables included); afterwards {inbox:,} events in the inbox and {facts:,} cases in the facts "
                f"({'complete' if complete else 'INCOMPLETE'}); CPU: scoring {cpu['server']}%, the rest {cpu['rest']}% (of 200%); "
                f"scoring peak RSS {rss:.0f} MiB"
            ),
            compare_with=("scoring_raw_consume", "broker_consume"),
            target=f"≥ {TARGET_RATE:,} events/s", met=complete and rate >= TARGET_RATE,
            data={**{k: status.get(k) for k in ("events_read", "events_applied", "events_failed", "seconds", "replay_seconds")},
                  "wall_s": wall, "inbox": inbox, "facts": facts, "cpu": cpu},
        ),
    }
