"""The HTTP load generator, run as its own process: ``python -m bench.loadgen SPEC RESULT``.

Why not httpx: on this machine ``httpx.AsyncClient`` managed ~230 requests/s on one
connection and ~80/s with 32 in flight against the bare uvicorn app, which answers
thousands — it would have measured itself. This sends pre-encoded HTTP/1.1 requests on
keep-alive connections and reads each answer by its Content-Length.

Why its own process: the server under test and PostgreSQL need the same two cores; a
generator inside the bench's event loop would also stall on the bench's own work. CPU it
used is reported, so its share of the machine is visible.

Two shapes of load:
- closed loop: ``concurrency`` requests always in flight (a capacity figure);
- open loop: requests scheduled at a fixed arrival rate whatever the answers, latency
  measured from each request's *scheduled* time, so a stalled server shows as latency
  instead of silently slowing the generator down (no coordinated omission). Answers still
  missing ``grace`` seconds after the last send are counted unanswered.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from bench.core import percentile, say


@dataclass(frozen=True)
class Spec:
    """What to send and how; travels to the child process as JSON."""

    label: str  # for progress lines: "intake @ 500/s"
    port: int
    path: str
    body: dict[str, Any]
    seconds: float
    concurrency: int = 0  # closed loop when > 0
    rate: float = 0.0  # open loop when > 0
    warmup: float = 0.0  # closed loop only: run, then start counting
    grace: float = 5.0  # open loop only
    max_connections: int = 256  # open loop only: beyond that, requests queue (and it shows in latency)
    vary: bool = False  # open loop only: "{n}" in the body's strings becomes the request's number
    first: int = 0  # with vary: the first request's number (a later step must not repeat an earlier one's bodies)


def spec_json(spec: Spec) -> str:
    return json.dumps(asdict(spec), ensure_ascii=False)


def numbered(body: Any, n: int) -> Any:
    """The body with every "{n}" in its strings replaced by ``n`` (distinct appeals, not duplicates)
    and every "{n8}" by its last eight digits (a distinct mobile number: "139{n8}")."""
    if isinstance(body, str):
        return body.replace("{n8}", f"{n % 10**8:08d}").replace("{n}", str(n))
    if isinstance(body, dict):
        return {k: numbered(v, n) for k, v in body.items()}
    if isinstance(body, list):
        return [numbered(v, n) for v in body]
    return body


def encode_post(port: int, path: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, ensure_ascii=False).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


class Connection:
    """One keep-alive connection to 127.0.0.1, opened on first use and again after a failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> int:
        """Send one request and read its whole answer; the status, or 0 when the connection failed."""
        try:
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
            assert self._reader is not None
            self._writer.write(request)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status, length, close = _parse_head(head)
            if length:
                await self._reader.readexactly(length)
            if close:
                self.close()
            return status
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.close()
            return 0

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, Content-Length, whether the server closes the connection)."""
    lines = head.split(b"\r\n")
    status, length, close = int(lines[0][9:12]), 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
    return status, length, close


@dataclass
class Tally:
    """Statuses and latencies of the answered requests (status 0: the connection failed)."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds

    def add(self, status: int, seconds: float) -> None:
        self.statuses[status] += 1
        self.latencies.append(seconds)

    def summary(self, elapsed: float, *, unanswered: int = 0, **extra: Any) -> dict[str, Any]:
        """Counts and latency percentiles in ms; unanswered requests count as infinitely slow."""
        ordered = sorted(self.latencies) + [float("inf")] * unanswered
        in_ms = [x * 1000 for x in ordered]
        return {
            "elapsed_s": elapsed,
            "answered": len(self.latencies),
            "unanswered": unanswered,
            "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
            "p50_ms": percentile(in_ms, 0.50),
            "p90_ms": percentile(in_ms, 0.90),
            "p99_ms": percentile(in_ms, 0.99),
            "max_ms": percentile(in_ms, 1.0),
            **extra,
        }


async def _progress(label: str, started: float, seconds: float) -> None:
    """``[bench] <label>: 4/8 s`` once a second, for runs long enough to need it."""
    if seconds < 3:
        return
    while (done := time.perf_counter() - started) < seconds - 0.5:
        await asyncio.sleep(1.0)
        say(f"{label}: {min(seconds, done + 1):.0f}/{seconds:.0f} s")


async def closed_loop(spec: Spec) -> dict[str, Any]:
    """``concurrency`` workers, each one request at a time on its own connection."""
    request = encode_post(spec.port, spec.path, spec.body)
    tally = Tally()
    count_from = time.perf_counter() + spec.warmup
    stop = count_from + spec.seconds

    async def worker() -> None:
        conn = Connection(spec.port)
        try:
            while (sent := time.perf_counter()) < stop:
                status = await conn.exchange(request)
                if sent >= count_from:
                    tally.add(status, time.perf_counter() - sent)
        finally:
            conn.close()

    progress = asyncio.create_task(_progress(spec.label, time.perf_counter(), spec.warmup + spec.seconds))
    await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    progress.cancel()
    return tally.summary(time.perf_counter() - count_from)


async def open_loop(spec: Spec) -> dict[str, Any]:
    """Requests at ``rate`` per second for ``seconds``, each on the first idle connection."""
    total = round(spec.rate * spec.seconds)
    # Encoded before the clock starts, so that building them never delays the schedule.
    requests = (
        [encode_post(spec.port, spec.path, numbered(spec.body, spec.first + i)) for i in range(total)]
        if spec.vary else [encode_post(spec.port, spec.path, spec.body)] * total
    )
    tally = Tally()
    idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()  # LIFO: reuse warm connections first
    for _ in range(spec.max_connections):
        idle.put_nowait(Connection(spec.port))

    async def one(scheduled: float, request: bytes) -> None:
        conn = await idle.get()
        try:
            status = await conn.exchange(request)
        finally:
            idle.put_nowait(conn)
        tally.add(status, time.perf_counter() - scheduled)

    start = time.perf_counter() + 0.05
    tasks: list[asyncio.Task[None]] = []
    late = 0.0  # how far behind schedule the generator itself fell
    progress = asyncio.create_task(_progress(spec.label, start, spec.seconds))
    for i in range(total):
        scheduled = start + i / spec.rate
        if (delay := scheduled - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        late = max(late, time.perf_counter() - scheduled)
        tasks.append(asyncio.create_task(one(scheduled, requests[i])))
    progress.cancel()
    if waiting := sum(not task.done() for task in tasks):
        say(f"{spec.label}: {waiting} not answered yet, waiting up to {spec.grace:.0f} s")
    cutoff = start + spec.seconds + spec.grace
    _, pending = await asyncio.wait(tasks, timeout=max(0.0, cutoff - time.perf_counter())) if tasks else (set(), set())
    # Answers of an overloaded server trickle in after the last send: rate over the whole span.
    elapsed = max(spec.seconds, time.perf_counter() - start)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    while not idle.empty():
        idle.get_nowait().close()
    return tally.summary(elapsed, unanswered=len(pending), sent=total, generator_late_ms=round(late * 1000, 1))


async def run(spec: Spec) -> dict[str, Any]:
    cpu_before = time.process_time()
    result = await (closed_loop(spec) if spec.concurrency else open_loop(spec))
    result["generator_cpu_s"] = time.process_time() - cpu_before
    return result


def main(argv: list[str]) -> int:
    """``SPEC`` as JSON in, the summary as JSON into the file ``RESULT``."""
    spec_text, result_path = argv
    result = uvloop.run(run(Spec(**json.loads(spec_text))))
    Path(result_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
