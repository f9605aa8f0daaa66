"""A steady stream of appeals, as phones on a bad network send them: every appeal keeps its
Idempotency-Key and is retried until intake acknowledges it (or the run ends)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter

import httpx


# Attempts in flight at once. While intake is down for long (a restart under a loaded machine
# took 100 s) the retries of every unacknowledged appeal pile up; queued inside one httpx
# pool, a thousand of them starved it (its scheduling pass is over every queued request).
MAX_IN_FLIGHT = 64


class SteadyLoad:
    def __init__(self, intake_url: str, *, rate: float = 10, body: dict | None = None) -> None:
        self.intake_url = intake_url
        self.rate = rate
        self.body = body or {}
        self.acknowledged: dict[str, str] = {}  # idempotency key → case id
        self.acked_at: list[float] = []  # time.monotonic() of each acknowledgement
        self.statuses: Counter[int] = Counter()  # every answer's status, retries included
        self.pending: set[str] = set()
        self.sent = 0
        self.retries = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def __aenter__(self) -> SteadyLoad:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self, grace: float = 60) -> None:
        """Stop sending new appeals; keep retrying the unacknowledged ones for ``grace`` seconds."""
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._task, grace)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.intake_url, timeout=10) as client:
            in_flight: set[asyncio.Task[None]] = set()
            started = time.monotonic()
            while not self._stopping:
                due = int((time.monotonic() - started) * self.rate) - self.sent
                for _ in range(max(0, due)):
                    self.sent += 1
                    task = asyncio.create_task(self._file(client, self.sent))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                await asyncio.sleep(0.02)
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)

    async def _file(self, client: httpx.AsyncClient, n: int) -> None:
        key = f"load-{uuid.uuid4().hex}"
        self.pending.add(key)
        body = {
            "title": f"第{n}号诉求：楼道灯坏了",
            "description": f"编号{n}。{uuid.uuid4().hex[:8]} 单元楼道的灯不亮，请尽快处理。",
            "channel": "app",
            "contact": {"name": "韦先生", "phone": f"138{n % 100_000_000:08d}"},
            **self.body,
        }
        delay = 0.2
        while True:
            try:
                async with self._slots:
                    response = await client.post("/api/v1/appeals", json=body, headers={"Idempotency-Key": key})
                self.statuses[response.status_code] += 1
                if response.status_code == 201:
                    self.acknowledged[key] = response.json()["case_id"]
                    self.acked_at.append(time.monotonic())
                    self.pending.discard(key)
                    return
            except httpx.HTTPError:
                pass  # intake down or restarting: same key again shortly
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
