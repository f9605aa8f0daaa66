import pytest

from shared.testing import Infra, service_settings, unique
from sla.settings import SlaSettings


def sla_settings(infra: Infra, *, topic: str, database: str, **overrides) -> SlaSettings:
    """An sla with time travel on and a brisk ticker."""
    values = {"time_travel": True, "tick_max_sleep_seconds": 0.2}
    values.update(overrides)
    return service_settings(SlaSettings, infra, topic=topic, database=database, **values)


@pytest.fixture
def names():
    return {"topic": unique("lifecycle"), "database": unique("sla")}
