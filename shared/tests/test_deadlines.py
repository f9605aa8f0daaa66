"""The response limit of a call or whistle (响应 / 报到), ``shared.deadlines``: pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.deadlines import response_due, response_minutes


@pytest.mark.parametrize(
    ("urgency", "asked", "minutes"),
    [
        ("emergency", None, 30),  # departments on site within 30 minutes
        ("emergency", 120, 30),  # an emergency is never given longer
        ("emergency", 15, 15),  # but may be given less
        ("normal", None, 60),  # the normal response limit, as for signing
        ("urgent", None, 60),
        (None, None, 60),  # an old case without an urgency
        ("normal", 120, 120),  # the township may give a normal matter longer
    ],
)
def test_response_minutes(urgency: str | None, asked: int | None, minutes: int) -> None:
    assert response_minutes(urgency, asked) == minutes


def test_response_due_is_clock_time_from_the_call() -> None:
    called = datetime(2026, 10, 1, 23, 50, tzinfo=UTC)  # a holiday, near midnight: a whistle does not wait
    assert response_due(called, 30) == called + timedelta(minutes=30)
