"""The platform's figure: appeals from intake to a dispatch order (交办单), every service running.

All five services run as their own processes on one topic, each with its own database.
Intake is driven open-loop with distinct streetlamp appeals in 城关镇 (the catalogue sends
them to 住建局), first at a gentle rate and then at the target rate, each step drained
before the next; the bench reads the topic itself: for each case, the time from its
``case.received`` to its ``case.dispatched`` (the broker's record timestamps, set by each
producer when it published) is that case's end-to-end lag. Each step says how much CPU
every service used meanwhile (the five of them, PostgreSQL and the broker share the two
cores), and memory of every service is read idle and again after the load.

Then the path alone: intake and dispatch (the services between an appeal and its order) on
fresh databases and a topic of their own, at a little over the target rate — what the path
does on the two cores when SLA, scoring and notify run on other machines.
"""

from __future__ import annotations

import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from bench.core import QUICK, Context, Figure, TopicWatch, ms, percentile, say
from bench.loadgen import Spec
from bench.procs import Child, drive, machine_cpu_seconds, process_cpu_seconds, service_env, tree_cpu_seconds
from services.dev.devstack import free_port
from shared.cloudevents import header

SERVICES = ("intake", "dispatch", "sla", "scoring", "notify")
# Only the services between an appeal and its dispatch order: what that path does on the two
# cores when SLA, scoring and notify run elsewhere (as a deployment may place them).
PATH = ("intake", "dispatch")
TARGET_RATE = 500  # cases/s from intake to a dispatch order …
TARGET_P99_S = 2.0  # … with p99 lag under this
# The path alone is offered a little more than the target: the rate of orders out of a path
# that keeps up is the offered rate give or take the first and last cases' lags, so offering
# exactly the target would leave a path that keeps up a hair above or below it by chance.
PATH_RATE = 520

# Written under the targets table when a target is missed (bench.report).
WHY_MISSED = {
    "pipeline_500": (
        "with every service on the two cores. Each case is four lifecycle events that each of the five services "
        "reads, and about 66 rows written across five databases (`rows_per_case`). At 500/s offered the two cores are "
        "full (the CPU split adds up to nearly 200%), so intake cannot even accept 500/s. 500/s would need the whole "
        "platform in 4 ms of CPU per case with nothing left for the load generator; on 2026-12-07 18:11 it took 10.8 ms "
        "at 500/s offered (156 cases/s): intake 3.8, PostgreSQL 2.7, notify 1.3, SLA 1.0, dispatch 0.8, the broker "
        "0.8, scoring 0.45. Without intake the rest alone is 7 ms, about 280 cases/s on two cores. On 2026-11-29 the "
        "platform took about 7 ms per case and gave 267 cases/s, on a machine 1.4–1.8× faster (`asyncpg_8` 10,818 "
        "then, 5,600–6,600 tx/s today) and before the learned subject model. "
        "The simpler path is not slower, measured in the same run by alternating worktrees: the one-handler contract "
        "alone (f714ff4 against its merge df121a1), pipeline at 60/s for 40 s, three rounds each: the four consumers "
        "1.05× the CPU per case (5.5 → 5.8 ms, ranges 5.0–5.9 and 5.6–5.9), the whole platform 1.03×, intake "
        "(unchanged by the merge) 1.02×, i.e. within the noise, dispatch 1.07× (an orders read per batch, since "
        "made only when a triage or task item is in the batch); and everything of #21 with what landed beside it "
        "(f714ff4 against 02fba74, two rounds each): 79 and 76 → 124 and 138 cases/s at 500/s offered, the path "
        "102 and 102 → 183 and 204 orders/s. The right target on two cores is not a rate but the CPU per case, "
        "kept from growing (10.8 ms today, against a same-run baseline); capacity comes from cores: at 10.8 ms a "
        "case, 500 cases/s needs about 5.5 cores for the services, PostgreSQL and the broker (intake, dispatch and "
        "SLA scale by replicas: phase `replicas`)."
    ),
    "pipeline_path_520": (
        "not met since intake became costlier per appeal (see `intake_sustained`): 207 orders/s at 520/s offered on "
        "2026-12-07 18:11 (183–282 in the day's other runs), where four runs on 2026-11-29 gave 520–531, every appeal "
        "accepted and dispatched, p99 lag about 0.5 s. Intake, one process, sets the pace (86% of one core): for each "
        "appeal it classifies the text with the learned model and searches the 200 newest open cases of the street, "
        "and it applies dispatch's events to its appeals and timelines. A second intake process is the remedy "
        "(`intake_replicas_2`)."
    ),
}

APPEAL = {
    "title": "西宁街{n}号路灯不亮",
    "description": "忻城县城关镇城中社区西宁街{n}号门前的路灯坏了，晚上很黑。",
    "channel": "app",
    "contact": {"name": "韦先生", "phone": "139{n8}"},  # a citizen each: notify limits messages per recipient
    "location": {"address": "忻城县城关镇城中社区西宁街{n}号"},
}


def _env(ctx: Context, run: str, name: str, port: int) -> dict[str, str]:
    # A group of its own: a later run's service of the same name must not meet this one's.
    extra: dict[str, str] = {"consumer_group": f"bench-{run}-{name}"}
    if name == "intake":
        # Every appeal is a distinct matter (only identical texts would merge), and one
        # generator with one phone must not meet the abuse limits.
        extra |= {"duplicate_similarity": "1.0", "citizen_rate_limit": "0/1", "client_rate_limit": "0/1"}
    return service_env(
        name, database_url=ctx.postgres.url_for(f"bench_{run}_{name}"), bootstrap_servers=ctx.broker.bootstrap_servers,
        port=port, topic=f"bench-{run}", **extra,
    )  # fmt: skip


def _steps(ctx: Context) -> tuple[float, ...]:
    """A gentle rate, then the target (a quick run: the gentle one only)."""
    gentle = ctx.timing.rates[0]
    return (gentle,) if ctx.timing is QUICK else (gentle, float(TARGET_RATE))


async def pipeline(ctx: Context) -> dict[str, Figure]:
    """Every service, at each step; then (not in a quick run) the path's services alone, a little over the target."""
    figures = await _run(ctx, "pipeline", SERVICES, _steps(ctx))
    if ctx.timing is not QUICK:
        figures |= await _run(ctx, "pipeline_path", PATH, (float(PATH_RATE),))
    return figures


async def _run(ctx: Context, run: str, services: tuple[str, ...], steps: tuple[float, ...]) -> dict[str, Figure]:
    """``services`` on fresh databases and a topic of their own, driven at each rate of ``steps``;
    the figures are named ``{run}_{rate}``, and the memory of each service after the run's load."""
    ports = {name: free_port() for name in services}
    children: dict[str, Child] = {}
    try:
        for name in services:
            children[name] = Child(
                name, [sys.executable, "-m", name], env=_env(ctx, run, name, ports[name]), log_path=ctx.log_dir / f"{run}-{name}.log"
            )
        await asyncio.gather(*(children[n].wait_ok(f"http://127.0.0.1:{ports[n]}/ready") for n in services))
        await asyncio.sleep(3)
        idle = {name: child.rss_mib() for name, child in children.items()}
        say(f"{run}: idle RSS " + ", ".join(f"{n} {v:.0f} MiB" for n, v in idle.items()))
        figures: dict[str, Figure] = {}
        async with _TopicWatch(ctx.broker.bootstrap_servers, f"bench-{run}") as watch:
            first = 0
            for rate in steps:
                figures |= await _step(ctx, run, rate, first, ports["intake"], children, watch)
                first += round(rate * ctx.timing.step * 2)
        if run != "pipeline":
            return figures
        loaded = {name: child.rss_mib() for name, child in children.items()}
        return figures | {"services_rss": _memory_figure(idle, loaded)}
    finally:
        for child in children.values():
            child.stop()


async def _step(
    ctx: Context, run: str, rate: float, first: int, port: int, children: dict[str, Child], watch: _TopicWatch
) -> dict[str, Figure]:
    """Drive intake at ``rate`` and wait until every filed appeal has its order (or it stalls).
    Appeals are numbered on from ``first``: one step's texts must not duplicate another's."""
    seen = set(watch.received)
    cpu_before = {name: process_cpu_seconds(child.pid) for name, child in children.items()}
    servers = {"PostgreSQL": ctx.postgres.pid, "broker": ctx.broker.pid}
    servers_before = {name: tree_cpu_seconds(pid) for name, pid in servers.items() if pid}
    machine_before, started = machine_cpu_seconds(), time.monotonic()
    spec = Spec(f"{run} @ {rate:.0f}/s", port, "/api/v1/appeals", APPEAL, ctx.timing.step * 2,
                rate=rate, grace=ctx.timing.grace, vary=True, first=first)  # fmt: skip
    result = await drive(spec, server=children["intake"], work_dir=ctx.work_dir)
    accepted = result["statuses"].get("201", 0)
    offered = result["answered"] + result["unanswered"]
    await watch.until(lambda: len(watch.received.keys() - seen) >= accepted
                      and not (watch.received.keys() - seen) - watch.dispatched.keys(), timeout=120)  # fmt: skip
    wall = time.monotonic() - started
    cpu = {name: 100 * (process_cpu_seconds(child.pid) - cpu_before[name]) / wall for name, child in children.items()}
    for name, before in servers_before.items():
        cpu[name] = 100 * (tree_cpu_seconds(servers[name]) - before) / wall
    # The bench (load generator, topic reader) and anything else running on the machine.
    cpu["rest"] = max(0.0, 100 * (machine_cpu_seconds() - machine_before) / wall - sum(cpu.values()))
    cases = watch.received.keys() - seen
    return {f"{run}_{rate:.0f}": _rate_figure(run, rate, offered, accepted, cases, watch, cpu)}


class _TopicWatch(TopicWatch):
    """Reads the topic from the start: when each case was received and dispatched."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        super().__init__(AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"))
        self.received: dict[str, int] = {}
        self.dispatched: dict[str, int] = {}

    def seen(self, record: ConsumerRecord) -> None:
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

    def lags_s(self, cases: set[str]) -> list[float]:
        return sorted((self.dispatched[c] - self.received[c]) / 1000 for c in cases if c in self.dispatched)


def output_rate(times_ms: list[int]) -> float:
    """Orders per second between the 1st and the 99th percentile of their times: a path that
    keeps up gives the offered rate, one that falls behind the rate it managed. A straggler at
    either end does not move it (one case's lag is the lag figures' business, not the rate's),
    where first-to-last would have counted the last case's lag as time spent on all of them."""
    times = sorted(times_ms)
    trim = len(times) // 100
    inner = times[trim:len(times) - trim]
    if len(inner) < 2 or inner[-1] == inner[0]:
        return 0.0
    return (len(inner) - 1) / ((inner[-1] - inner[0]) / 1000)


def sustained(*, offered: int, accepted: int, filed: int, dispatched: int, per_s: float, p99_s: float | None) -> bool:
    """The target's test: every appeal offered was accepted within the grace and got its
    order, orders came out at the target rate or faster, and the lag's p99 is under its limit."""
    return (offered > 0 and accepted == offered == filed == dispatched and per_s >= TARGET_RATE
            and p99_s is not None and p99_s < TARGET_P99_S)  # fmt: skip


def _rate_figure(
    run: str, rate: float, offered: int, accepted: int, cases: set[str], watch: _TopicWatch, cpu: dict[str, float]
) -> Figure:
    lags = watch.lags_s(cases)
    dispatched = len(lags)
    per_s = output_rate([watch.dispatched[c] for c in cases if c in watch.dispatched])
    p50, p99 = percentile(lags, 0.5), percentile(lags, 0.99)
    at_target = rate >= TARGET_RATE
    everything = run == "pipeline"
    where = "every service" if everything else f"only {' and '.join(PATH)}"
    return Figure(
        f"intake → dispatch order, {where} running, {rate:.0f}/s offered", per_s, "cases/s",
        detail=(
            f"{dispatched} of {len(cases)} filed appeals dispatched ({accepted} of {offered} answered 201 within the grace); "
            f"lag p50 {ms(p50 * 1000 if p50 is not None else None)}, p99 {ms(p99 * 1000 if p99 is not None else None)}; "
            "CPU (% of one core, of 200%) " + ", ".join(f"{name} {share:.0f}%" for name, share in cpu.items())
            + " (bench, others)"
        ),
        compare_with=("asyncpg_8",),
        target=(
            f"≥ {TARGET_RATE}/s sustained with p99 lag < {TARGET_P99_S:.0f} s, "
            + ("every service on the two cores" if everything else "the path's services on the two cores")
        ) if at_target else None,
        met=sustained(offered=offered, accepted=accepted, filed=len(cases), dispatched=dispatched, per_s=per_s,
                      p99_s=p99) if at_target else None,  # fmt: skip
        data={"offered": rate, "offered_appeals": offered, "accepted": accepted, "filed": len(cases),
              "dispatched": dispatched, "lag_p50_s": p50, "lag_p99_s": p99, "cpu_percent": cpu},  # fmt: skip
    )


def _memory_figure(idle: dict[str, float], loaded: dict[str, float]) -> Figure:
    memory = ", ".join(f"{n} {idle[n]:.0f}→{loaded[n]:.0f}" for n in SERVICES)
    return Figure(
        "memory of each service, idle → after the load", max(loaded.values()), "MiB (largest)",
        detail=f"RSS in MiB: {memory}",
        data={"idle_mib": idle, "loaded_mib": loaded},
    )
