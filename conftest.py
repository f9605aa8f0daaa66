"""Session-wide real servers for the whole suite: one PostgreSQL, one Kafka-protocol broker.

Started once on free loopback ports and always stopped, even when tests fail. Set
TEST_DATABASE_URL and TEST_KAFKA_BOOTSTRAP_SERVERS to run the suite against servers you
already have instead (nothing embedded is started then).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.testing import DatabaseTemplates, Infra

ROOT = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts"


def pytest_configure(config: pytest.Config) -> None:
    # A run stopped with SIGTERM (a CI job cancelled, `kill` of the run) tears down as Ctrl-C
    # does, so the servers it started are stopped; by default SIGTERM ends the process at
    # once and leaves PostgreSQL, the broker and the services running.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends it at once
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    # Services started in-process copy a migrated template instead of migrating from empty.
    with pytest.MonkeyPatch.context() as monkeypatch:
        DatabaseTemplates().install(monkeypatch)
        yield from _servers(tmp_path_factory)


def _servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    external_db = os.environ.get("TEST_DATABASE_URL")
    external_kafka = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS")
    if external_db and external_kafka:
        yield Infra(postgres_url=external_db, bootstrap_servers=external_kafka)
        return

    from services.dev.devstack import EmbeddedPostgres, TansuBroker, free_port

    base = tmp_path_factory.mktemp("infra")
    ARTIFACTS.mkdir(exist_ok=True)
    # fsync off: every commit is still written to the operating system before it returns, so it
    # survives any process crash the tests cause (services and the postmaster killed with -9);
    # only a machine crash could lose it, and no test makes one. It saves ~5 ms of each of the
    # suite's many thousand commits. The development stack and the benchmarks keep fsync on.
    postgres = EmbeddedPostgres(base / "pg", free_port(), log_path=ARTIFACTS / "postgres.log", settings={"fsync": "off"})
    broker = TansuBroker(free_port(), log_path=ARTIFACTS / "broker.log")
    try:
        postgres.start()
        broker.start()
        yield Infra(postgres_url=postgres.url, bootstrap_servers=broker.bootstrap_servers, postgres=postgres, broker=broker)
    finally:
        broker.stop()
        postgres.stop()


# PIPL: no phone or ID number may appear in clear in any log line while the suite runs —
# neither from services running in the test process nor from those started as processes.
PHONE_OR_ID = re.compile(r"(?<![\d.])(1[3-9]\d{9}|\d{17}[\dXx])(?![\d])")


class _LeakWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not format is not ours to judge
            return
        if PHONE_OR_ID.search(text):
            self.leaks.append(f"{record.name}: {text[:200]}")


@pytest.fixture(scope="session", autouse=True)
def no_personal_data_in_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    watch = _LeakWatch()
    logging.getLogger().addHandler(watch)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(watch)
    leaks = list(watch.leaks)
    for path in [*tmp_path_factory.getbasetemp().rglob("*.log"), *ARTIFACTS.glob("*.log")]:
        if path.name in ("postgres.log", "broker.log"):
            continue  # the servers' own logs: statements are not logged
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if PHONE_OR_ID.search(line):
                leaks.append(f"{path.name}:{number}: {line[:200]}")
    assert not leaks, "personal data in clear in logs:\n" + "\n".join(leaks[:20])
