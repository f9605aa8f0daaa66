"""The event contract's limits against what every service stores (one rule, one place: the
contract holds the limit, and every column that keeps the value must hold it whole)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from dispatch.models import metadata as dispatch_tables
from intake.domain import tracking_number
from intake.models import metadata as intake_tables
from intake.settings import IntakeSettings
from notify.models import metadata as notify_tables
from scoring.models import metadata as scoring_tables
from shared.events import TRACKING_NO_MAX_LENGTH

TABLES = {"intake": intake_tables, "dispatch": dispatch_tables, "scoring": scoring_tables, "notify": notify_tables}


@pytest.mark.parametrize("service", TABLES)
def test_every_column_that_keeps_a_tracking_number_holds_the_longest_the_contract_allows(service):
    columns = [c for t in TABLES[service].tables.values() for c in t.columns if c.name == "tracking_no"]
    assert columns, f"{service} keeps no tracking number any more: drop it from this test"
    for column in columns:
        assert column.type.length >= TRACKING_NO_MAX_LENGTH, f"{column.table.name}.{column.name}"


def test_the_longest_tracking_number_intake_writes_fits_the_contract():
    # The longest prefix the setting allows, a date, the largest sequence number.
    prefix = "X" * 4
    IntakeSettings(region_prefix=prefix)
    with pytest.raises(ValidationError):
        IntakeSettings(region_prefix=prefix + "X")
    longest = tracking_number(prefix, datetime(2026, 12, 31, 23, 0, tzinfo=UTC), 999_999_999)
    assert len(longest) <= TRACKING_NO_MAX_LENGTH, longest
