"""Stopping the background loops every service runs (the outbox relay, the consumer, the
org follower, notify's sender, SLA's ticker, the directory's publisher) the same way."""

from __future__ import annotations

import asyncio
import contextlib


async def stop_task(task: asyncio.Task[object] | None, *, grace: float = 0) -> None:
    """Let ``task`` finish on its own within ``grace`` seconds (it was told to stop), then
    cancel it and wait until it has ended. Its own errors are its to log: none escape here,
    so a stopping service always gets to close what comes after."""
    if task is None:
        return
    if grace > 0 and not task.done():
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(task), timeout=grace)
    if not task.done():
        task.cancel()
    with contextlib.suppress(BaseException):
        await task
