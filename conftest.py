"""Session-wide real servers for the whole suite: one PostgreSQL, one Kafka-protocol broker.

Started once on free loopback ports and always stopped, even when tests fail. Set
TEST_DATABASE_URL and TEST_KAFKA_BOOTSTRAP_SERVERS to run the suite against servers you
already have instead (nothing embedded is started then).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.testing import Infra

ROOT = Path(__file__).resolve().parent
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    external_db = os.environ.get("TEST_DATABASE_URL")
    external_kafka = os.environ.get("TEST_KAFKA_BOOTSTRAP_SERVERS")
    if external_db and external_kafka:
        yield Infra(postgres_url=external_db, bootstrap_servers=external_kafka)
        return

    from services.devstack import EmbeddedPostgres, TansuBroker, free_port

    base = tmp_path_factory.mktemp("infra")
    ARTIFACTS.mkdir(exist_ok=True)
    postgres = EmbeddedPostgres(base / "pg", free_port(), log_path=ARTIFACTS / "postgres.log")
    broker = TansuBroker(free_port(), log_path=ARTIFACTS / "broker.log")
    try:
        postgres.start()
        broker.start()
        yield Infra(postgres_url=postgres.url, bootstrap_servers=broker.bootstrap_servers, postgres=postgres, broker=broker)
    finally:
        broker.stop()
        postgres.stop()
