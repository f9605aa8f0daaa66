"""How long each service takes to recover from a fault, seen from outside as ops would see it.

A monitor asks every running process of every service for ``/ready`` twice a second. A
service is *caught up* when each of its live replicas answers 200 (database and broker
reachable), has been assigned its partitions with a known lag, the live replicas together
own every partition, and none is more than a second behind (the oldest unhandled event's
age). A fault's recovery time for a service is from the fault until the first caught-up
look after the last look that was not (0 when the fault never set it back).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field

import httpx

from tests.e2e.harness import Platform

LOG_TAIL_LINES = 150  # of each lagging process's log, in a failure's message
CAUGHT_UP_SECONDS = 1.0  # behind by less than this (a steady load keeps a few events in flight)


def caught_up(answers: list[dict | None], partitions: int) -> bool:
    """Whether a service's live replicas (their /ready bodies; None: no 200 answer) are caught up."""
    if not answers or any(a is None for a in answers):
        return False
    owned: set[int] = set()
    for body in answers:
        checks = body["checks"]  # type: ignore[index]
        lag = checks.get("consumer_lag")
        if lag is None:
            continue  # no consumer (none of ours, but harmless)
        if checks.get("consumer_lag_unknown") or checks.get("consumer_lag_total") is None:
            return False
        if checks.get("consumer_lag_seconds_max", 0) >= CAUGHT_UP_SECONDS:
            return False
        owned |= {int(p) for p in lag}
    return len(owned) == partitions


def recovery_seconds(looks: list[tuple[float, bool]], since: float) -> float | None:
    """From ``since`` to the first caught-up look after the last one that was not; 0 when
    no look after ``since`` was behind; None when the last look is still behind."""
    after = [(t, ok) for t, ok in looks if t >= since]
    behind = [t for t, ok in after if not ok]
    if not behind:
        return 0.0
    back = [t for t, ok in after if ok and t > behind[-1]]
    return back[0] - since if back else None


@dataclass
class Fault:
    name: str
    at: float
    recovered: dict[str, float | None] = field(default_factory=dict)  # service → seconds
    acks_paused: float = 0.0  # longest wait for the load's next acknowledgement


class Monitor:
    def __init__(self, platform: Platform, services: tuple[str, ...], partitions: int, interval: float = 0.5) -> None:
        self.platform = platform
        self.services = services
        self.partitions = partitions
        self.interval = interval
        self.looks: dict[str, list[tuple[float, bool]]] = {s: [] for s in services}
        # The last /ready body of each process (None: no 200 answer): what a failure shows.
        self.last: dict[str, dict | None] = {}
        self.why_not: dict[str, str] = {}  # the last answer that was not a 200, per process
        self.faults: list[Fault] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Monitor:
        self._client = httpx.AsyncClient(timeout=2)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._client.aclose()

    def _replicas(self, service: str) -> list[str]:
        """The service's processes that are running (a replica killed for good is not counted)."""
        return [
            key for key, p in self.platform.processes.items()
            if key.split("#")[0] == service and p.proc is not None and p.proc.poll() is None
        ]  # fmt: skip

    async def _ready(self, key: str) -> dict | None:
        """The /ready body of a 200 answer, else None (what came instead is kept in ``why_not``)."""
        try:
            response = await self._client.get(f"{self.platform.url(key)}/ready")
        except httpx.HTTPError as exc:
            self.why_not[key] = f"no answer: {exc!r}"
            return None
        if response.status_code == 200:
            return response.json()
        self.why_not[key] = f"{response.status_code}: {response.text[:600]}"
        return None

    async def look(self) -> dict[str, bool]:
        now = time.monotonic()
        out = {}
        for service in self.services:
            keys = self._replicas(service)
            answers = await asyncio.gather(*(self._ready(k) for k in keys))
            self.last.update(zip(keys, answers))
            out[service] = caught_up(list(answers), self.partitions)
            self.looks[service].append((now, out[service]))
        return out

    async def _run(self) -> None:
        while True:
            await self.look()
            await asyncio.sleep(self.interval)

    async def settled(self, timeout: float = 180) -> None:
        """Until two looks in a row find every service caught up (after now)."""
        deadline = time.monotonic() + timeout
        in_a_row = 0
        while in_a_row < 2:
            if time.monotonic() > deadline:
                behind = [s for s, looks in self.looks.items() if looks and not looks[-1][1]]
                await self.dump_stacks(behind)
                raise AssertionError(f"not caught up {timeout}s after the fault: {behind}\n{self.describe(behind)}")
            await asyncio.sleep(self.interval)
            in_a_row = in_a_row + 1 if all(await self.look_now()) else 0

    async def dump_stacks(self, services: list[str]) -> None:
        """Ask each live process of ``services`` where it is stuck (shared.dumps: threads on
        SIGUSR1, asyncio tasks on SIGUSR2); the dumps land in their logs' tails."""
        for service in services:
            for key in self._replicas(service):
                proc = self.platform.processes[key].proc
                for sig in (signal.SIGUSR1, signal.SIGUSR2):
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(sig)  # type: ignore[union-attr]
        await asyncio.sleep(2)

    def describe(self, services: list[str]) -> str:
        """What each live process of ``services`` last answered on /ready (its consumer's part)."""
        lines = []
        for service in services:
            for key in self._replicas(service):
                body = self.last.get(key)
                if body is None:
                    lines.append(f"{key}: no 200 answer; the last was {self.why_not.get(key)}")
                else:
                    checks = body.get("checks", {})
                    lines.append(f"{key}: " + ", ".join(f"{k}={v}" for k, v in checks.items() if k.startswith("consumer")))
                # Where its consumer loop stands: CI keeps only what the test prints.
                log_path = self.platform.processes[key].log_path
                tail = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:] if log_path.exists() else []
                for line in tail:
                    # A task dump is one log line holding many: shown whole, a line a frame.
                    shown = line.replace("\\n", "\n") if "task dump" in line else line[:400]
                    lines.append(f"  {key} log: {shown}")
        return "\n".join(lines)

    async def look_now(self) -> list[bool]:
        return list((await self.look()).values())

    def record(self, name: str, at: float, acked_at: list[float]) -> Fault:
        fault = Fault(name, at, {s: recovery_seconds(self.looks[s], at) for s in self.services})
        end = at + max((v for v in fault.recovered.values() if v is not None), default=0.0)
        stamps = [at, *sorted(t for t in acked_at if at <= t <= end)]
        fault.acks_paused = max((b - a for a, b in zip(stamps, stamps[1:])), default=0.0)
        self.faults.append(fault)
        return fault

    def table(self) -> str:
        head = f"{'fault':<34}" + "".join(f"{s:>10}" for s in self.services) + f"{'acks paused':>13}"
        lines = ["recovery (s): fault until caught up again (lag < 1 s, every partition owned)", head]
        for f in self.faults:
            cells = "".join(f"{'—' if v is None else f'{v:.1f}':>10}" for v in (f.recovered[s] for s in self.services))
            lines.append(f"{f.name:<34}{cells}{f.acks_paused:>13.1f}")
        return "\n".join(lines)
