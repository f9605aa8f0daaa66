"""How fast a replica's partitions move to the other replica, with the default settings,
on the real broker: a stopped replica leaves the group (LeaveGroup), a crashed one is
noticed when its session runs out (issue #22 item 3: a crashed dispatch replica cost 15 s)."""

from __future__ import annotations

import asyncio
import signal
import time

from dispatch.app import create_app as create_dispatch
from dispatch.settings import DispatchSettings
from shared.settings import ServiceSettings
from shared.testing import Infra, ServiceProcess, eventually, free_port, running, service_env, service_settings, unique

SESSION_MS = ServiceSettings.model_fields["consumer_session_timeout_ms"].default
PARTITIONS = 4  # service_settings / service_env


async def _owned_by(service, count: int) -> bool:
    consumer = service.runtime.consumer
    return consumer.joined and len(consumer.lag()) == count


async def _handover_seconds(survivor, signalled: float) -> float:
    await eventually(lambda: _owned_by(survivor, PARTITIONS), timeout=60, interval=0.05, what="the survivor to own every partition")
    return time.monotonic() - signalled


async def test_partitions_move_to_the_other_replica_soon_after_a_stop_and_after_a_crash(infra: Infra, tmp_path):
    topic, database = unique("lifecycle"), unique("dispatch")
    # The default session, not the tests' shorter one (shared.testing.TEST_SESSION_MS).
    settings = service_settings(DispatchSettings, infra, topic=topic, database=database, consumer_session_timeout_ms=SESSION_MS)
    assert settings.consumer_session_timeout_ms == SESSION_MS
    port = free_port()
    env = service_env(
        infra, "DISPATCH_", topic=topic, database=database, port=port,
        # The defaults, not the tests' shorter session: what a deployment gets.
        DISPATCH_CONSUMER_SESSION_TIMEOUT_MS=str(SESSION_MS),
    )  # fmt: skip
    other = ServiceProcess("dispatch", env, port, tmp_path / "dispatch-2.log")
    async with running(create_dispatch(settings), settings) as survivor:
        await eventually(lambda: _owned_by(survivor, PARTITIONS), timeout=60, what="the first replica to own every partition")
        times = {}
        for how in (signal.SIGTERM, signal.SIGKILL):
            other.start()
            try:
                await other.wait_ready(timeout=120)
                await eventually(lambda: _owned_by(survivor, PARTITIONS // 2), timeout=60, what="the two replicas to share")
                assert other.proc is not None
                signalled = time.monotonic()
                other.proc.send_signal(how)  # not other.stop(): that would block this loop's heartbeats
                times[how.name] = await _handover_seconds(survivor, signalled)
                await eventually(lambda: _exited(other), timeout=30, what="the replica to exit")
            finally:
                other.kill()
        print(f"\nhandover with a {SESSION_MS / 1000:g} s session: stopped {times['SIGTERM']:.1f} s, crashed {times['SIGKILL']:.1f} s")
        # A stopped replica leaves the group: its partitions move before its session could end.
        assert times["SIGTERM"] < SESSION_MS / 1000
        # A crashed one is missed for a session, then the group rebalances (~1.5 sessions on the
        # embedded broker): with the 10 s session of old this took ~16 s.
        assert times["SIGKILL"] < 12


async def _exited(process: ServiceProcess) -> bool:
    await asyncio.sleep(0)
    return process.proc is not None and process.proc.poll() is not None
