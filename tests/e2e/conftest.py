import pytest

from shared.testing import Infra
from tests.e2e.harness import running_platform


@pytest.fixture(scope="module")
async def platform(infra: Infra, tmp_path_factory):
    """Every service as its own process on a fresh topic, for one test module."""
    async with running_platform(infra, tmp_path_factory.mktemp("e2e-logs")) as started:
        yield started
