import pytest

from dispatch.app import create_app
from dispatch.settings import DispatchSettings
from shared.testing import Infra, TopicReader, running, service_settings, unique


@pytest.fixture(scope="module")
async def dispatch(infra: Infra):
    """A running dispatch service (real HTTP, its own database and topic) per test module."""
    settings = service_settings(DispatchSettings, infra, topic=unique("lifecycle"), database=unique("dispatch"), org_topic=unique("org"))
    async with running(create_app(settings), settings) as service:
        yield service


@pytest.fixture(scope="module")
async def topic(dispatch):
    async with TopicReader.of(dispatch) as reader:
        yield reader
