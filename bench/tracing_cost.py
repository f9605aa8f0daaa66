"""What tracing costs intake (shared.tracing): off, and on exporting to a local OTLP sink.

Intake runs twice as in the ``intake`` phase (its own process, fresh database, the same
steps and capacity run): once with no ``OTEL_*`` variable (tracing off, as by default) and
once with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at a sink in the bench process that
accepts OTLP/HTTP exports and discards them (it answers 200 with an empty response, as a
collector does, so the exporter's batching, encoding and sending all run). The off path
is also timed on its own: what a filing calls when tracing is off (the trace headers of the
appeal and of its log lines), per appeal, against intake's time per appeal at capacity.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import appeals
from bench.core import Context, Figure, say
from services.dev.devstack import free_port
from shared import tracing

TARGET_ON_COST = 0.10  # tracing on costs under this share of intake's sustained rate and capacity
# Log lines written per appeal filed at the default level (WARNING in the bench): none; the
# off path is counted with one line anyway, to be on the safe side.
LOG_LINES_PER_APPEAL = 1


class OtlpSink:
    """An OTLP/HTTP endpoint that accepts every export and keeps only counts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.exports = 0
        self.bytes = 0
        self._server: asyncio.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> OtlpSink:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: the exporter's session reuses the connection
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                await reader.readexactly(length)
                self.exports += 1
                self.bytes += length
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the exporter hung up, or the sink is closing
        finally:
            writer.close()


def off_path_ns(rounds: int = 200_000) -> float:
    """Nanoseconds per appeal of what tracing adds to a filing when it is off."""
    assert not tracing.active(), "the bench process must not trace"
    line: dict[str, Any] = {"event": "x"}
    started = time.perf_counter_ns()
    for _ in range(rounds):
        tracing.headers_of()  # the appeal's trace headers (StoredAppeal.trace)
        for _ in range(LOG_LINES_PER_APPEAL):
            tracing.log_ids(None, "info", line)
    return (time.perf_counter_ns() - started) / rounds


async def tracing_cost(ctx: Context) -> dict[str, Figure]:
    say("intake with tracing off")
    off = await appeals.run_intake(ctx, "bench_trace_off")
    async with OtlpSink() as sink:
        say(f"intake with tracing on, exporting to the OTLP sink at {sink.endpoint}")
        on = await appeals.run_intake(ctx, "bench_trace_on", {tracing.ENDPOINT_ENV: sink.endpoint})
    say(f"the sink took {sink.exports} exports, {sink.bytes / 1e6:.1f} MB")
    figures: dict[str, Figure] = {}
    for name, measured in (("off", off), ("on", on)):
        figures[f"tracing_{name}_sustained"] = _relabel(measured["intake_sustained"], f"tracing {name}: ")
        figures[f"tracing_{name}_capacity"] = _relabel(measured["intake_capacity"], f"tracing {name}: ")
    off_rate, on_rate = off["intake_sustained"].value or 0.0, on["intake_sustained"].value or 0.0
    off_cap, on_cap = off["intake_capacity"].value or 0.0, on["intake_capacity"].value or 0.0
    sustained_ratio = on_rate / off_rate if off_rate else 0.0
    capacity_ratio = on_cap / off_cap if off_cap else 0.0
    figures["tracing_on_ratio"] = Figure(
        "tracing on ÷ off: intake's best sustained rate", sustained_ratio, "×",
        detail=(f"{on_rate:,.0f} vs {off_rate:,.0f} appeals/s; capacity {on_cap:,.0f} vs {off_cap:,.0f}/s "
                f"({capacity_ratio:.2f}×); the sink took {sink.exports} OTLP exports ({sink.bytes / 1e6:.1f} MB)"),
        target=f"≥ {1 - TARGET_ON_COST:.2f}× (tracing on costs under {TARGET_ON_COST:.0%})",
        met=bool(off_rate) and sustained_ratio >= 1 - TARGET_ON_COST,
        data={"sustained_ratio": sustained_ratio, "capacity_ratio": capacity_ratio, "exports": sink.exports, "bytes": sink.bytes},
    )  # fmt: skip
    ns = off_path_ns()
    per_appeal_ns = 1e9 / off_cap if off_cap else None
    share = ns / per_appeal_ns if per_appeal_ns else None
    figures["tracing_off_path"] = Figure(
        "tracing off: what a filing calls, per appeal", ns, "ns",
        detail=(f"{share:.4%} of intake's time per appeal at capacity ({per_appeal_ns / 1e3:,.0f} µs)" if share is not None
                else "intake's capacity was not measured"),
        target="nothing measurable (< 0.1% of the time per appeal)",
        met=share is not None and share < 0.001,
        data={"ns": ns, "share_of_appeal": share},
    )  # fmt: skip
    return figures


def _relabel(figure: Figure, prefix: str) -> Figure:
    return Figure(prefix + figure.label, figure.value, figure.unit, figure.detail, figure.compare_with, data=figure.data)
