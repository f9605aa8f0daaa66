"""stop_task: a loop that stops by itself within the grace ends cleanly; one that does not is cancelled."""

from __future__ import annotations

import asyncio

from shared.tasks import stop_task


async def test_a_task_that_finishes_within_the_grace_is_not_cancelled():
    stopping = asyncio.Event()
    finished: list[str] = []

    async def loop():
        await stopping.wait()
        await asyncio.sleep(0.05)  # finishes the work in hand
        finished.append("clean")

    task = asyncio.create_task(loop())
    stopping.set()
    await stop_task(task, grace=2)
    assert finished == ["clean"] and not task.cancelled()


async def test_a_task_that_hangs_is_cancelled_after_the_grace():
    async def hang():
        await asyncio.sleep(3600)

    task = asyncio.create_task(hang())
    started = asyncio.get_running_loop().time()
    await stop_task(task, grace=0.1)
    assert task.cancelled() and asyncio.get_running_loop().time() - started < 1


async def test_errors_of_the_task_do_not_escape_and_none_is_fine():
    async def fail():
        raise RuntimeError("boom")

    task = asyncio.create_task(fail())
    await asyncio.sleep(0)
    await stop_task(task)
    await stop_task(None)
    assert task.done()
