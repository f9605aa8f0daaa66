"""``GET /api/v1/admin/rebuild`` while a rebuild runs: records done of the target, events/s,
elapsed and remaining seconds, with the real broker and database. Its own module: a service
whose rebuild fetches small batches, so that the replay of ~1,700 events takes many steps."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from scoring.app import create_app
from scoring.settings import ScoringSettings
from scoring.tests.factory import publish_many
from scoring.tests.test_figures import tally
from shared.testing import OPS, Infra, running, service_settings, unique

SEPTEMBER = datetime(2026, 9, 1, 1, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def scoring(infra: Infra):
    settings = service_settings(
        ScoringSettings, infra, topic=unique("lifecycle"), database=unique("scoring"),
        test_clock="2026-11-21T04:00:00+00:00", rebuild_batch_size=50,
    )
    async with running(create_app(settings), settings) as service:
        yield service


def assert_rate_fits(answer: dict) -> None:
    """The rate is events done over the time elapsed. The answer shows the elapsed time rounded
    to the millisecond, so a rate read a few milliseconds in can only be checked within what
    that rounding allows (half a millisecond either way), plus the rate's own rounding."""
    done, elapsed = answer["events_done"], answer["elapsed_seconds"]
    low, high = done / (elapsed + 0.0005), done / max(elapsed - 0.0005, 1e-9)
    assert low - 0.1 <= answer["events_per_second"] <= high + 0.1, answer


async def test_rebuild_progress_shows_done_of_target_rate_and_time_left(scoring, infra):
    events = tally(500, 400, SEPTEMBER, township="LB-WX-TW")
    await publish_many(infra.bootstrap_servers, scoring.settings.kafka_topic, events)

    started = await scoring.client.post("/api/v1/admin/rebuild", headers=OPS)
    assert started.status_code == 202, started.text
    answers = [started.json()]
    while answers[-1]["state"] == "running":
        await asyncio.sleep(0.02)
        answer = await scoring.client.get("/api/v1/admin/rebuild", headers=OPS)
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())

    final = answers[-1]
    assert final["state"] == "done", final
    # The target is the whole topic (from the high-water marks at the start), all of it done.
    assert final["events_target"] == final["events_done"] == final["events_read"] == len(events)
    assert final["remaining_seconds"] == 0
    assert final["elapsed_seconds"] == pytest.approx(final["replay_seconds"], abs=0.002)
    assert_rate_fits(final)

    # Mid-way: part done, a rate, and the time left at that rate.
    midway = [a for a in answers if a["events_target"] is not None and 0 < a["events_done"] < a["events_target"]]
    assert midway, [(a["phase"], a["events_done"], a["events_target"]) for a in answers]
    for answer in midway:
        assert answer["events_target"] == len(events)
        assert_rate_fits(answer)
        left = (answer["events_target"] - answer["events_done"]) / answer["events_per_second"]
        assert answer["remaining_seconds"] == pytest.approx(left, rel=0.01, abs=0.1)
    done = [a["events_done"] for a in answers]
    assert done == sorted(done), "the count of events done never goes back"
