"""Cursor paging, one way for every list: an opaque cursor names the last row a page showed
(its time and id), so the next page starts after it even while rows are being added."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from shared.edge import datetime_in_range
from shared.problems import Problem


def encode_cursor(at: datetime, key: str | int) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{key}".encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """(time, id) of the last row shown, or None for the first page; a 400 for a cursor we never gave."""
    if not cursor:
        return None
    try:
        at, key = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        if "\x00" in key:  # no id we give out holds one; PostgreSQL text could not take it
            raise ValueError("NUL in cursor")
        return datetime_in_range(datetime.fromisoformat(at)), key
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise Problem(400, "cursor is not one this API gave out", slug="bad-cursor", field="cursor") from None
