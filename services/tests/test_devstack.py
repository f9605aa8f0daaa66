"""The embedded dev infrastructure, exercised with real processes: PostgreSQL and the Tansu broker.

Every server a test starts is registered with the ``cleanup`` fixture, which stops it even
when the test fails, so no process outlives the test run.
"""

from __future__ import annotations

import os
import signal
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.dev.devstack import EmbeddedPostgres, PortInUse, TansuBroker, free_port, port_is_free

Server = TypeVar("Server", EmbeddedPostgres, TansuBroker)


@pytest.fixture
def cleanup() -> Iterator[Callable[[Server], Server]]:
    """Register a server; it is stopped at teardown whatever happened in the test."""
    servers: list[EmbeddedPostgres | TansuBroker] = []

    def register(server: Server) -> Server:
        servers.append(server)
        return server

    try:
        yield register
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A loopback port something else is already listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def fetchval(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# --- ports -----------------------------------------------------------------------------


def test_free_port_is_free_until_someone_listens_on_it() -> None:
    port = free_port()
    assert port_is_free(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert not port_is_free(port)


def test_free_port_never_hands_out_a_port_twice() -> None:
    # Ports for a fixture's servers are chosen before any binds; the kernel would give the
    # same free port to calls in a row now and then, and two servers would meet on it.
    ports = [free_port() for _ in range(3000)]
    assert len(set(ports)) == len(ports)


def test_servers_refuse_non_loopback_addresses(tmp_path: Path) -> None:
    # PostgreSQL trusts every client, so it must never be reachable from another machine.
    with pytest.raises(ValueError, match="loopback"):
        EmbeddedPostgres(tmp_path / "pg", free_port(), host="0.0.0.0")
    with pytest.raises(ValueError, match="loopback"):
        TansuBroker(free_port(), host="0.0.0.0")


# --- PostgreSQL ------------------------------------------------------------------------


async def test_postgres_serves_databases_it_creates_and_drops(tmp_path: Path, cleanup) -> None:
    pg = cleanup(EmbeddedPostgres(tmp_path / "pg", free_port(), log_path=tmp_path / "logs" / "postgres.log"))
    pg.start()
    assert pg.url == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    assert pg.pid is not None
    assert (tmp_path / "logs" / "postgres.log").stat().st_size > 0
    pid = pg.pid
    pg.start()  # already running: nothing happens
    assert pg.pid == pid

    pg.create_database("intake_test")
    pg.create_database("intake_test")  # idempotent
    assert await fetchval(pg.url_for("intake_test"), "select 1") == 1
    assert await fetchval(pg.url, "show max_connections") == "300"
    assert await fetchval(pg.url, "show fsync") == "on"

    # WITH (FORCE): a client still connected does not block the drop.
    held = await asyncpg.connect(pg.url_for("intake_test"))
    try:
        pg.drop_database("intake_test")
        pg.drop_database("intake_test")  # idempotent
    finally:
        held.terminate()
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await fetchval(pg.url_for("intake_test"), "select 1")


async def test_postgres_takes_more_settings_over_its_own(tmp_path: Path, cleanup) -> None:
    pg = cleanup(EmbeddedPostgres(tmp_path / "pg", free_port(), settings={"autovacuum_naptime": "5s"}))
    pg.start()
    assert await fetchval(pg.url, "show autovacuum_naptime") == "5s"
    assert await fetchval(pg.url, "show fsync") == "on"  # ours stay


async def test_postgres_keeps_data_across_restarts(tmp_path: Path, cleanup) -> None:
    pg = cleanup(EmbeddedPostgres(tmp_path / "pg", free_port()))
    pg.start()
    await execute(pg.url, "create table appeal (id int primary key); insert into appeal values (42)")

    pg.stop()
    assert pg.pid is None
    assert port_is_free(pg.port)
    with pytest.raises(OSError):
        await fetchval(pg.url, "select 1")
    pg.stop()  # idempotent

    pg.start()  # same directory, same port
    assert await fetchval(pg.url, "select id from appeal") == 42


async def test_postgres_starts_after_a_crash_left_a_stale_pid_file(tmp_path: Path, cleanup) -> None:
    first = cleanup(EmbeddedPostgres(tmp_path / "pg", free_port()))
    first.start()
    await execute(first.url, "create table appeal (id int); insert into appeal values (7)")
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)  # no clean shutdown: postmaster.pid stays behind
    assert (tmp_path / "pg" / "postmaster.pid").exists()

    second = cleanup(EmbeddedPostgres(tmp_path / "pg", first.port))
    second.start()
    assert await fetchval(second.url, "select id from appeal") == 7


async def test_postgres_replaces_a_server_an_earlier_run_left_running(tmp_path: Path, cleanup) -> None:
    # A launcher killed with SIGKILL never stops its PostgreSQL; the next run must not be blocked.
    orphan = cleanup(EmbeddedPostgres(tmp_path / "pg", free_port()))
    orphan.start()

    pg = cleanup(EmbeddedPostgres(tmp_path / "pg", free_port()))
    pg.start()
    assert pg.pid != orphan.pid
    assert port_is_free(orphan.port)  # the orphan is gone, not reused
    assert await fetchval(pg.url, "select 1") == 1


def test_postgres_reports_a_taken_port_before_starting(tmp_path: Path, listening_port: int, cleanup) -> None:
    pg = cleanup(EmbeddedPostgres(tmp_path / "pg", listening_port))
    with pytest.raises(PortInUse, match=f"port {listening_port} is in use; set POSTGRES_PORT to another port"):
        pg.start()
    assert pg.pid is None
    assert not (tmp_path / "pg" / "postmaster.pid").exists()

    other = cleanup(EmbeddedPostgres(tmp_path / "pg2", listening_port, port_env_var="INTAKE_PG_PORT"))
    with pytest.raises(PortInUse, match="set INTAKE_PG_PORT"):
        other.start()


# --- Tansu broker ----------------------------------------------------------------------


async def topics(bootstrap_servers: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def test_broker_carries_messages_and_restarts_empty_after_a_crash(tmp_path: Path, cleanup) -> None:
    port = free_port()
    broker = cleanup(TansuBroker(port, log_path=tmp_path / "broker.log"))
    broker.start()
    assert broker.bootstrap_servers == f"127.0.0.1:{port}"
    assert broker.pid is not None

    topic = f"appeals-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"appeal 42 received")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest")
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.value == b"appeal 42 received"

    broker.kill()
    assert broker.pid is None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()

    fresh = cleanup(TansuBroker(port))  # same port right after the crash
    fresh.start()
    assert topic not in await topics(fresh.bootstrap_servers)
    assert "broker" in (tmp_path / "broker.log").read_text()  # the first broker's output was kept


def test_broker_stop_is_idempotent_and_frees_the_port(cleanup) -> None:
    broker = cleanup(TansuBroker(free_port()))
    broker.start()
    pid = broker.pid
    broker.start()  # already running: nothing happens
    assert broker.pid == pid
    broker.stop()
    broker.stop()
    assert broker.pid is None
    assert port_is_free(broker.port)


def test_broker_reports_a_taken_port_before_starting(listening_port: int, cleanup) -> None:
    broker = cleanup(TansuBroker(listening_port))
    with pytest.raises(PortInUse, match=f"port {listening_port} is in use; set KAFKA_PORT to another port"):
        broker.start()
    assert broker.pid is None
