"""Cursors round-trip, and a made-up one is a clear 400."""

from datetime import UTC, datetime

import pytest

from shared.paging import decode_cursor, encode_cursor
from shared.problems import Problem


def test_a_cursor_names_the_last_row_shown():
    at = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    assert decode_cursor(encode_cursor(at, "JB-XC-2026-000042")) == (at, "JB-XC-2026-000042")
    assert decode_cursor(encode_cursor(at, 17)) == (at, "17")
    assert decode_cursor(None) is None and decode_cursor("") is None


@pytest.mark.parametrize("forged", ["not-base64!", "bm8tYmFy", "MjAyNi0xMy0wMXx4"])
def test_a_cursor_we_never_gave_is_refused(forged):
    with pytest.raises(Problem) as refused:
        decode_cursor(forged)
    assert refused.value.status == 400 and refused.value.extra["field"] == "cursor"
