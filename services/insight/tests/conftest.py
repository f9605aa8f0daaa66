"""Insight's fixtures: the service with the tests' thresholds, and its topic, per test module."""

import pytest

from services.insight.app import create_app
from services.insight.settings import InsightSettings
from services.insight.tests.test_findings import THRESHOLDS
from shared.testing import Infra, TopicReader, running, service_settings, unique


@pytest.fixture(scope="module")
async def insight(infra: Infra):
    """A running insight (real HTTP, its own database and topic) finding with ``THRESHOLDS``."""
    settings = service_settings(
        InsightSettings, infra, topic=unique("lifecycle"), database=unique("insight"), org_topic=unique("org"),
        thresholds=THRESHOLDS,
    )  # fmt: skip
    async with running(create_app(settings), settings) as service:
        yield service


@pytest.fixture(scope="module")
async def topic(insight):
    async with TopicReader.of(insight) as reader:
        yield reader
