"""What every phase shares: the figure it returns, the run's timings and context, progress
lines, and a reader of the topic that watches what the services publish."""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from services.dev.devstack import EmbeddedPostgres, TansuBroker
from shared.tasks import stop_task

ROOT = Path(__file__).resolve().parent.parent


def say(message: str) -> None:
    """A progress line; flushed so that `make bench | tee` shows it as it happens."""
    print(f"[bench] {message}", flush=True)


@dataclass
class Figure:
    """One measured figure, as the report shows it.

    ``compare_with`` names baseline figures of the same run that this one is divided by:
    absolute numbers drift between shared machines, ratios to a baseline measured minutes
    earlier on the same machine much less.
    """

    label: str
    value: float | None  # None: could not be measured
    unit: str
    detail: str = ""
    compare_with: tuple[str, ...] = ()
    baseline: bool = False  # a figure of the bare machine, which service figures are compared with
    target: str | None = None  # the project's target, in words
    met: bool | None = None
    data: dict[str, Any] = field(default_factory=dict)  # raw numbers for results.json


@dataclass(frozen=True)
class Timing:
    """How long each part of a phase runs; ``--quick`` swaps in short ones."""

    warmup: float  # seconds run and discarded before a measurement
    measure: float  # seconds of a closed-loop or fixed-duration measurement
    step: float  # seconds of each fixed-arrival-rate step
    grace: float  # seconds a step waits for late answers before counting them unanswered
    rates: tuple[float, ...]  # arrival rates of a service's steps, per second
    scale: float = 1.0  # share of the full data volumes (a million clocks, 200k events) a phase loads


FULL = Timing(warmup=1.0, measure=5.0, step=8.0, grace=5.0, rates=(100, 250, 500, 1000, 1500))
QUICK = Timing(warmup=0.5, measure=1.5, step=3.0, grace=2.0, rates=(100, 250), scale=0.05)


@dataclass
class Context:
    """The run as a phase sees it: the embedded servers, timings, and every figure so far."""

    postgres: EmbeddedPostgres
    broker: TansuBroker
    timing: Timing
    work_dir: Path  # scratch files, deleted after the run
    log_dir: Path  # child processes' logs, kept for a post-mortem
    figures: dict[str, Figure] = field(default_factory=dict)

    def value(self, key: str) -> float | None:
        figure = self.figures.get(key)
        return figure.value if figure else None


PhaseFn = Callable[[Context], Awaitable[dict[str, Figure]]]


@dataclass(frozen=True)
class Phase:
    """A named measurement. ``needs``: phases whose figures it is compared with, run first."""

    name: str
    run: PhaseFn
    method: str  # one line for the report's notes on method
    needs: tuple[str, ...] = ()


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending sequence; ``None`` when it falls on an
    unanswered request (kept in the sequence as ``inf``, so that losses count as slow)."""
    if not ordered:
        return None
    value = ordered[max(0, math.ceil(q * len(ordered)) - 1)]
    return None if math.isinf(value) else value


def ms(value: float | None) -> str:
    """Milliseconds for the report; ``None`` is a percentile that fell on unanswered requests."""
    if value is None:
        return "past the cut-off"
    return f"{value:.1f} ms" if value < 100 else f"{value:,.0f} ms"


class TopicWatch(ABC):
    """Reads a topic in the background while a phase runs (``async with``): ``start_at``
    says where to begin, ``seen`` what each record means to the phase."""

    def __init__(self, consumer: AIOKafkaConsumer, *, poll_ms: int = 200) -> None:
        self.consumer = consumer
        self.poll_ms = poll_ms
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self):  # noqa: ANN204 (returns the subclass)
        await self.consumer.start()
        await self.start_at()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await stop_task(self._task)
        await self.consumer.stop()

    async def start_at(self) -> None:
        """Position the consumer before reading; by default where it starts on its own."""

    @abstractmethod
    def seen(self, record: ConsumerRecord) -> None:
        """One record read."""

    async def _read(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=self.poll_ms, max_records=5000)
            for records in batch.values():
                for record in records:
                    self.seen(record)
