"""The practice's two largest published figures through events too: 睢宁 速来办 16,513 → 12,642
(76.6%) and 来宾 citywide 2,864 → 2,813 (98.2%), each as published (half-up, one decimal: 来宾市's
shipped format; 睢宁's set here, 睢宁 not being in the demo directory). About 65,000 events are published on the topic and the
facts built from them by replaying the topic (the rebuild path: the same handlers, applied
in batches), so the test takes well under a minute. Its own module: its own service."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scoring.tests.factory import publish_many
from scoring.tests.test_figures import answered, stats, tally
from shared.testing import OPS, eventually

pytestmark = pytest.mark.slow

SUINING = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)  # the third quarter
LAIBIN = datetime(2026, 4, 1, 1, 0, tzinfo=UTC)  # the second quarter


async def test_suining_and_laibin_figures_through_events(scoring, infra):
    events = tally(16513, 12642, SUINING, region="SNX", township="SNX-SLB") + tally(2864, 2813, LAIBIN, region="LB", township="LB-12345")
    await publish_many(infra.bootstrap_servers, scoring.settings.kafka_topic, events)
    made = await scoring.client.post(
        "/api/v1/figure-formats", json={"county": "SNX", "rounding": "half_up", "places": 1}, headers=OPS
    )
    assert made.status_code == 201, made.text

    started = await scoring.client.post("/api/v1/admin/rebuild", headers=OPS)
    assert started.status_code == 202, started.text

    async def finished():
        status = (await scoring.client.get("/api/v1/admin/rebuild", headers=OPS)).json()
        return status if status["state"] != "running" else None

    status = await eventually(finished, timeout=240, interval=0.5, what="the replay of both tallies")
    assert status["state"] == "done" and status["events_failed"] == 0, status

    async def complete(path: str, date: str, appeals: int, solved: int):
        body = await stats(scoring, path, period="quarter", date=date)
        return body if body["counts"]["resolved"] == answered(appeals, solved) else None

    suining = await eventually(lambda: complete("counties/SNX", "2026-08-01", 16513, 12642), timeout=60, what="睢宁")
    assert (suining["counts"]["accepted"], suining["counts"]["solved"]) == (16513, 12642)
    assert suining["rates"]["resolution"] == "76.6%"  # 76.557…%: truncated it would read 76.5%
    laibin = await eventually(lambda: complete("counties/LB", "2026-05-01", 2864, 2813), timeout=60, what="来宾")
    assert (laibin["counts"]["accepted"], laibin["counts"]["solved"]) == (2864, 2813)
    assert laibin["rates"]["resolution"] == "98.2%" and laibin["figure_format"]["places"] == 1
