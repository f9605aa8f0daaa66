import subprocess
import sys

import pytest

from intake.settings import IntakeSettings
from shared.settings import SettingsError, load_settings


def test_service_variable_wins_over_the_shared_one(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "10.0.0.1:9092")
    monkeypatch.setenv("INTAKE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    monkeypatch.setenv("DISPATCH_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
    assert load_settings(IntakeSettings).kafka_bootstrap_servers == "127.0.0.1:19092"
    monkeypatch.delenv("INTAKE_KAFKA_BOOTSTRAP_SERVERS")
    assert load_settings(IntakeSettings).kafka_bootstrap_servers == "10.0.0.1:9092"


def test_shared_database_url_gives_each_service_its_own_database(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@db.internal:5432/postgres")
    settings = load_settings(IntakeSettings)
    assert settings.async_database_url == "postgresql+asyncpg://app:pw@db.internal:5432/jiesu_intake"
    monkeypatch.setenv("INTAKE_DATABASE_URL", "postgresql://app:pw@other:5432/intake_prod")
    assert load_settings(IntakeSettings).async_database_url == "postgresql+asyncpg://app:pw@other:5432/intake_prod"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("INTAKE_PORT", "eighty"), ("KAFKA_BOOTSTRAP_SERVERS", "localhost"), ("DATABASE_URL", "mysql://x@y/z")],
)
def test_bad_value_names_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(IntakeSettings)
    assert variable.removeprefix("INTAKE_") in str(caught.value.code)
    assert "INTAKE_" in str(caught.value.code)


def test_bad_setting_aborts_service_start_with_a_clear_message():
    result = subprocess.run(
        [sys.executable, "-m", "intake"],
        env={"INTAKE_PORT": "not-a-port", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "INTAKE_PORT" in result.stderr
    assert "valid integer" in result.stderr
    assert "Traceback" not in result.stderr
