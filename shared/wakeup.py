"""Waking a loop that sleeps until its next due time, in this process and in the other
replicas of the service (the processes sharing its database).

Loops that act on rows when they fall due (the outbox relay, notify's sender, SLA's ticker)
sleep until the earliest due time they read from the database, or a long fallback; a commit
that writes an earlier one wakes them:
- in the process that committed, at once (``set``, called from ``UnitOfWork.after_commit``:
  after the commit, so the loop finds the rows);
- in the other replicas, by PostgreSQL ``NOTIFY`` on the loop's channel (``notify_others``),
  which each of them ``LISTEN``s for on a connection held for it (``listen`` opens its own,
  ``listen_on`` uses one the loop holds anyway, as the relay's advisory-lock connection).

Notifications are per database, so one channel name serves every service. A process's own
NOTIFYs come back to its own listener: they carry its token and are ignored (it woke
already). A NOTIFY lost (a dropped connection, a failed send) only delays the rows to the
fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.tasks import stop_task

log = logging.getLogger(__name__)


class Wakeup:
    def __init__(self, engine: AsyncEngine, channel: str, *, name: str) -> None:
        self.engine = engine
        self.channel = channel
        self.name = name
        self.event = asyncio.Event()
        self._token = uuid.uuid4().hex
        self._notify_task: asyncio.Task[None] | None = None
        self._notify_again = False
        self._conn: AsyncConnection | None = None
        self._raw: Any = None  # the asyncpg connection listening, when ``listen`` opened one

    # -- waking ------------------------------------------------------------------------

    def set(self) -> None:
        """Wake the loop of this process."""
        self.event.set()

    def nudge(self) -> None:
        """After a commit: wake the loop here and in every other replica."""
        self.event.set()
        self.notify_others()

    def notify_others(self) -> None:
        """NOTIFY the other replicas (after the commit: they must find the rows). At most one
        NOTIFY in flight; commits meanwhile are covered by one more after it."""
        if self._notify_task is not None and not self._notify_task.done():
            self._notify_again = True
            return
        self._notify_task = asyncio.create_task(self._notify(), name=f"{self.name}-notify")

    async def _notify(self) -> None:
        while True:
            self._notify_again = False
            try:
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT pg_notify(:channel, :token)"), {"channel": self.channel, "token": self._token})
                    await conn.commit()
            except Exception as exc:  # noqa: BLE001 - the others' fallback still finds the rows
                log.info("%s could not notify the other replicas: %r", self.name, exc)
            if not self._notify_again:
                return

    # -- listening ---------------------------------------------------------------------

    async def listen_on(self, conn: AsyncConnection) -> None:
        """Be woken by the other replicas' NOTIFYs for as long as ``conn`` lives."""
        raw = await conn.get_raw_connection()
        await raw.driver_connection.add_listener(self.channel, self._on_notify)

    async def listen(self) -> bool:
        """Keep a connection of its own listening, opened again when it was lost (a database
        restart); call it on every round of the loop. False while it cannot (the loop then
        relies on its fallback)."""
        if self._raw is not None and not self._raw.is_closed():
            return True
        await self._drop_connection()
        try:
            self._conn = await self.engine.connect()
            await self.listen_on(self._conn)
            self._raw = (await self._conn.get_raw_connection()).driver_connection
            # LISTEN takes effect at once; the connection stays idle outside any transaction.
            await self._conn.commit()
        except Exception as exc:  # noqa: BLE001 - the fallback still runs the loop
            log.info("%s cannot listen for the other replicas yet: %r", self.name, exc)
            await self._drop_connection()
            return False
        return True

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload != self._token:
            self.event.set()

    # -- sleeping ----------------------------------------------------------------------

    async def sleep(self, seconds: float) -> bool:
        """Until woken or ``seconds`` have passed; True when woken. The loop clears ``event``
        at the start of its round, before it reads the due times: a commit after that read
        then wakes the sleep at once instead of being lost."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        await stop_task(self._notify_task, grace=1)
        await self._drop_connection()

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            # Invalidate, not close: a connection handed back to the pool would go on listening.
            with contextlib.suppress(Exception):
                await self._conn.invalidate()
        self._conn = None
        self._raw = None
