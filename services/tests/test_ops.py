"""The ops command line as the on-call engineer runs it: a subprocess against a running intake,
configured by the same environment variables intake reads."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from aiokafka import AIOKafkaProducer

from intake.app import create_app as create_intake
from intake.settings import IntakeSettings
from shared import ops
from shared.ports import REPLICA_PORT_STEP, free_port, port_is_free, replica_count, replica_ports
from shared.testing import ROOT, Infra, eventually, running, service_env, service_settings, unique


async def run_ops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "services.ops", *args], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


async def test_cli_status_and_dead_letters_against_a_running_intake(infra: Infra):
    topic, database = unique("lifecycle"), unique("intake")
    settings = service_settings(IntakeSettings, infra, topic=topic, database=database, org_topic=unique("org"))
    env = service_env(infra, "INTAKE_", topic=topic, database=database, port=settings.port)
    async with running(create_intake(settings), settings) as intake:
        # A message intake handles by type but cannot read: parked at once.
        producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(
                topic, b"{broken", key=b"case-x",
                headers=[("ce_specversion", b"1.0"), ("ce_type", b"case.closed"), ("ce_id", b"broken-1")],
            )
        finally:
            await producer.stop()
        [letter] = await eventually(lambda: ops.list_dead_letters(intake.runtime.engine), what="the message parked")

        listed = await run_ops(env, "dlq", "list", "intake")
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert lines[0].split() == ["id", "status", "event", "type", "case", "tries", "parked", "at", "error"]
        row = lines[2].split()
        assert row[:5] == [str(letter.id), "parked", "case.closed", "case-x", "1"]
        assert "1 dead letter(s) of intake" in listed.stdout

        status = await run_ops(env, "status", "intake")
        row = next(line.split() for line in status.stdout.splitlines() if line.startswith("intake"))
        # service, health, ready, lag, lag age, outbox backlog, oldest unsent, DLQ
        assert row[:4] == ["intake", "ok", "ready", "0"], status.stdout
        assert row[5] == "0" and row[7] == "1", status.stdout
        assert "needs a look: intake" in status.stdout and status.returncode == 1

        # Changing commands ask first; with no terminal to ask on, nothing happens without --yes.
        refused = await run_ops(env, "dlq", "drop", "intake", str(letter.id), "--reason", "unreadable test message")
        assert refused.returncode == 1 and "add --yes" in refused.stderr
        assert "Will drop 1 parked event(s) of intake" in refused.stdout
        assert [d.status for d in await ops.list_dead_letters(intake.runtime.engine, status=None)] == ["parked"]
        dropped = await run_ops(env, "dlq", "drop", "intake", str(letter.id), "--reason", "unreadable test message", "--yes")
        assert dropped.returncode == 0, dropped.stderr
        assert "dropped 1 dead letter(s) of intake" in dropped.stdout
        assert [d.status for d in await ops.list_dead_letters(intake.runtime.engine, status=None)] == ["dropped"]

        missing = await run_ops(env, "dlq", "show", "intake", "999")
        assert missing.returncode == 1 and "no dead letter with id 999" in missing.stderr


async def test_cli_names_the_service_and_the_fix_when_its_database_is_unreachable(infra: Infra):
    env = service_env(infra, "INTAKE_", topic="t", database="x", port=1)
    env["INTAKE_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/jiesu_intake"
    result = await run_ops(env, "dlq", "list", "intake")
    assert result.returncode == 1
    assert result.stderr.startswith("error: intake: cannot use its database 127.0.0.1:1/jiesu_intake")
    assert "INTAKE_DATABASE_URL or DATABASE_URL" in result.stderr


def _replica_ports() -> tuple[int, int]:
    """A free port for replica 1 whose replica-0 port (100 below) is free too (nobody there)."""
    for _ in range(50):
        second = free_port()
        if second - REPLICA_PORT_STEP > 1024 and port_is_free(second - REPLICA_PORT_STEP):
            return second - REPLICA_PORT_STEP, second
    raise RuntimeError("no pair of free ports 100 apart")


async def test_status_reports_every_replica_the_deployment_has(infra: Infra):
    """Issue #22 item 4: with INTAKE_REPLICAS=2, replica 0 down and replica 1 serving, status
    shows both — not the service "down" while its other replica handles everything."""
    topic, database = unique("lifecycle"), unique("intake")
    base, second = _replica_ports()
    settings = service_settings(IntakeSettings, infra, topic=topic, database=database, org_topic=unique("org"), port=second)
    env = service_env(infra, "INTAKE_", topic=topic, database=database, port=base, INTAKE_REPLICAS="2")
    async with running(create_intake(settings), settings):
        status = await run_ops(env, "status", "intake")
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines() if line.startswith("intake")}
    assert set(rows) == {"intake", "intake-1"}, status.stdout
    assert rows["intake"][1].startswith("down"), status.stdout
    assert rows["intake-1"][1:3] == ["ok", "ready"], status.stdout
    assert "needs a look: intake" in status.stdout and "intake-1" not in status.stdout.split("needs a look:")[1]


def test_replica_ports_step_by_100_from_the_service_port():
    assert replica_ports(8002, 3) == [8002, 8102, 8202]
    assert replica_count("DISPATCH_", {"DISPATCH_REPLICAS": "2"}) == 2
    assert replica_count("DISPATCH_", {}) == 1
