import pytest

from scoring.app import create_app
from scoring.settings import ScoringSettings
from shared.testing import Infra, running, service_settings, unique


@pytest.fixture(scope="module")
async def scoring(infra: Infra):
    """A running scoring service (real HTTP, its own database and topic) per test module."""
    settings = service_settings(
        ScoringSettings, infra, topic=unique("lifecycle"), database=unique("scoring"),
        test_clock="2026-11-21T04:00:00+00:00",  # Saturday of week 2026-W47,
    )
    async with running(create_app(settings), settings) as service:
        yield service
