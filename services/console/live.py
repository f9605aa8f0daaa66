"""``GET /live``: board snapshots over server-sent events, pushed only when they change.

One poller per signed-in identity, however many tabs that user has open: it asks the
services every ``poll_seconds`` while someone listens, and stops when the last tab closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from services.console.board import digest
from services.console.session import Session

log = logging.getLogger(__name__)
Collect = Callable[[Session], Awaitable[dict[str, Any]]]
KEEPALIVE_SECONDS = 15.0


def sse(event: str, data: Any, event_id: int | None = None) -> str:
    """One event in the text/event-stream format (JSON has no raw newlines, so one data line)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


class Feed:
    """The snapshots of one identity: the latest, a version number, and who is listening."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.version = 0
        self.latest: dict[str, Any] | None = None
        self.digest: str | None = None
        self.listeners: set[asyncio.Queue[tuple[int, dict[str, Any]]]] = set()
        self.task: asyncio.Task[None] | None = None
        self.polls = 0

    def offer(self, snapshot: dict[str, Any]) -> bool:
        """Keep a new snapshot and tell every listener, unless nothing changed."""
        new = digest(snapshot)
        if new == self.digest:
            return False
        self.digest, self.latest = new, snapshot
        self.version += 1
        for queue in self.listeners:
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()  # a slow tab gets the latest only
            queue.put_nowait((self.version, snapshot))
        return True


class LiveHub:
    def __init__(self, collect: Collect, interval: float) -> None:
        self.collect = collect
        self.interval = interval
        self.feeds: dict[tuple[str, str, str | None], Feed] = {}
        self.closing = asyncio.Event()

    @staticmethod
    def key(session: Session) -> tuple[str, str, str | None]:
        return session.user_id, session.role, session.unit

    async def _poll(self, feed: Feed) -> None:
        while feed.listeners and not self.closing.is_set():
            try:
                feed.offer(await self.collect(feed.session))
            except Exception:  # a failed poll must not end the stream; the next one may work
                log.exception("live board poll failed for %s", feed.session.user_id)
            feed.polls += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.interval)

    async def stream(self, session: Session) -> AsyncIterator[str]:
        """The SSE text for one tab, until it goes away or the console stops."""
        key = self.key(session)
        feed = self.feeds.get(key)
        if feed is None:
            feed = self.feeds[key] = Feed(session)
        feed.session = session  # the newest token of that user
        queue: asyncio.Queue[tuple[int, dict[str, Any]]] = asyncio.Queue(maxsize=1)
        feed.listeners.add(queue)
        if feed.latest is not None:
            queue.put_nowait((feed.version, feed.latest))
        if feed.task is None or feed.task.done():
            feed.task = asyncio.create_task(self._poll(feed))
        try:
            yield "retry: 3000\n\n"
            while not self.closing.is_set():
                getter = asyncio.ensure_future(queue.get())
                closing = asyncio.ensure_future(self.closing.wait())
                done, _ = await asyncio.wait({getter, closing}, timeout=KEEPALIVE_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                closing.cancel()
                if getter in done:
                    version, snapshot = getter.result()
                    yield sse("board", snapshot, version)
                else:
                    getter.cancel()
                    if not done:
                        yield ": keep-alive\n\n"
        finally:
            feed.listeners.discard(queue)
            if not feed.listeners:
                self.feeds.pop(key, None)
                if feed.task is not None:
                    feed.task.cancel()

    async def close(self) -> None:
        self.closing.set()
        tasks = [f.task for f in self.feeds.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
