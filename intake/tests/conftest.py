import pytest

from intake.app import create_app
from intake.settings import IntakeSettings
from shared.testing import Infra, running, service_settings, unique

HOTLINE_SECRET = b"test-hotline-secret"
APP_SECRET = b"test-app-secret"


@pytest.fixture(scope="module")
async def intake(infra: Infra, tmp_path_factory):
    """A running intake service (real HTTP, its own database and topic) per test module."""
    settings = service_settings(
        IntakeSettings, infra, topic=unique("lifecycle"), database=unique("intake"),
        hotline_clients=f"hotline12345:{HOTLINE_SECRET.decode()},appbackend:{APP_SECRET.decode()}",
        max_body_bytes=200_000,
        attachment_dir=tmp_path_factory.mktemp("attachments"),
        attachment_max_bytes=300_000,
        org_topic=unique("org"),
    )
    async with running(create_app(settings), settings) as service:
        yield service
