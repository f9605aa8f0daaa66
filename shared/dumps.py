"""Where is it stuck? Stack dumps on a signal, for a process that answers nothing or says nothing.

``kill -USR1 <pid>`` writes every thread's Python stack to stderr (faulthandler: it works
even when the event loop is blocked by a call that never yields). ``kill -USR2 <pid>``
logs every asyncio task's stack — where each coroutine is waiting — which is what a stall
inside a client library looks like while the loop itself runs. Installed by ``shared.service.serve``
(each service's process), not in processes that merely import a service (the tests).
"""

from __future__ import annotations

import asyncio
import faulthandler
import io
import logging
import signal

log = logging.getLogger(__name__)


def install_thread_dump() -> None:
    """SIGUSR1: every thread's stack on stderr (the process's log)."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def install_task_dump(loop: asyncio.AbstractEventLoop) -> None:
    """SIGUSR2: every asyncio task's stack in the log (call with the serving loop)."""
    loop.add_signal_handler(signal.SIGUSR2, log_tasks)


def task_stacks() -> str:
    out = io.StringIO()
    tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    out.write(f"{len(tasks)} asyncio tasks\n")
    for task in tasks:
        out.write(f"--- {task.get_name()}\n")
        task.print_stack(limit=12, file=out)
    return out.getvalue()


def log_tasks() -> None:
    log.warning("asyncio task dump (SIGUSR2):\n%s", task_stacks())
