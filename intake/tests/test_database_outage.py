"""While PostgreSQL is down intake answers 503 problem+json with Retry-After, logs one line
for the outage (not a traceback per request), stays alive on /health, and after the restart
serves again without reusing a connection the restart broke (issue #22, item 2).

The database is a private PostgreSQL server for this test, so stopping it leaves the
session's server to the other tests."""

from __future__ import annotations

import logging

import pytest

from intake.app import create_app
from intake.settings import IntakeSettings
from services.dev.devstack import EmbeddedPostgres
from shared.ports import free_port
from shared.testing import AUDITOR, Infra, eventually, running, unique

from intake.tests.test_intake_api import STREETLAMP

PROBLEM = "application/problem+json"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def private_postgres(tmp_path):
    server = EmbeddedPostgres(tmp_path / "pg", free_port(), log_path=tmp_path / "postgres.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_database_outage_is_a_503_logged_once_and_recovery_reuses_no_broken_connection(
    infra: Infra, private_postgres: EmbeddedPostgres, tmp_path
):
    settings = IntakeSettings(
        database_url=private_postgres.url_for(unique("intake")),
        kafka_bootstrap_servers=infra.bootstrap_servers,
        kafka_topic=unique("lifecycle"),
        kafka_partitions=2,
        consumer_group=unique("intake"),
        org_topic=unique("org"),
        attachment_dir=tmp_path / "attachments",
        database_pool_size=4,
    )
    seen = _Records()
    watched = [logging.getLogger(name) for name in ("shared.outage", "shared.problems", "uvicorn.error")]
    for logger in watched:
        logger.addHandler(seen)
    try:
        async with running(create_app(settings), settings) as intake:
            filed = await intake.client.post("/api/v1/appeals", json=STREETLAMP)
            assert filed.status_code == 201, filed.text
            case_id = filed.json()["case_id"]

            private_postgres.stop()
            answers = []
            for _ in range(5):
                answers.append(await intake.client.post("/api/v1/appeals", json=STREETLAMP))  # raw asyncpg
                answers.append(await intake.client.get(f"/api/v1/appeals/{case_id}", headers=AUDITOR))  # SQLAlchemy
            for answer in answers:
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"] == PROBLEM
                assert int(answer.headers["retry-after"]) > 0
                assert answer.json()["type"].endswith("/database-unavailable")
            assert (await intake.client.get("/health")).status_code == 200, "liveness does not depend on the database"
            assert (await intake.client.get("/ready")).status_code == 503

            errors = [r for r in seen.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in errors]
            assert "database unavailable" in errors[0].getMessage()
            assert errors[0].exc_info is None, "one line, no traceback"

            private_postgres.start()

            async def filing_works() -> bool:
                return (await intake.client.post("/api/v1/appeals", json=STREETLAMP)).status_code == 201

            await eventually(filing_works, timeout=30, interval=0.2, what="filing to work again after the restart")
            # From here on nothing may fail: no pooled connection the restart broke is reused.
            for _ in range(10):
                again = await intake.client.post("/api/v1/appeals", json=STREETLAMP)
                assert again.status_code == 201, again.text
                view = await intake.client.get(f"/api/v1/appeals/{again.json()['case_id']}", headers=AUDITOR)
                assert view.status_code == 200, view.text
            await eventually(lambda: _logged(seen, "database reachable again"), what="the recovery to be logged")
            assert not [r for r in seen.records if r.levelno >= logging.ERROR and r is not errors[0]]
    finally:
        for logger in watched:
            logger.removeHandler(seen)


async def _logged(seen: _Records, text: str) -> bool:
    return any(text in r.getMessage() for r in seen.records)
