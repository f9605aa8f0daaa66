"""A process that answers nothing or says nothing can be asked where it is stuck: SIGUSR1
dumps every thread's stack, SIGUSR2 logs every asyncio task's (shared.dumps), as each
service's process installs them (the fault test asks a lagging replica this way)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from shared.testing import ROOT

PROGRAM = textwrap.dedent('''
    import asyncio, logging, os, signal, sys
    from shared import dumps

    logging.basicConfig(stream=sys.stderr, level=logging.INFO)

    async def waits_for_good():
        await asyncio.Event().wait()

    async def main():
        dumps.install_thread_dump()
        dumps.install_task_dump(asyncio.get_running_loop())
        asyncio.create_task(waits_for_good(), name="stuck-consumer")
        await asyncio.sleep(0.1)
        os.kill(os.getpid(), signal.SIGUSR2)
        await asyncio.sleep(0.2)
        os.kill(os.getpid(), signal.SIGUSR1)
        await asyncio.sleep(0.2)

    asyncio.run(main())
''')


def test_the_signals_dump_the_stuck_task_and_every_thread():
    done = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    err = done.stderr
    assert "asyncio task dump (SIGUSR2)" in err
    assert "--- stuck-consumer" in err and "waits_for_good" in err  # where the task waits
    assert "Current thread" in err or "Thread 0x" in err  # faulthandler's dump of the threads
