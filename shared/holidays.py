"""The holiday tables every service follows (节假日安排): platform reference data, like the org
directory.

The State Council publishes next year's schedule each winter; an administrator loads it in
the directory (``PUT /api/v1/holidays/{year}``), which publishes it on the one-partition,
compacted topic ``holiday-tables`` — one record per year, key ``b"<year>"``, header
``ce_type`` ``holiday.table``, value ``{"year", "holidays", "workdays", "loaded_at",
"loaded_by"}`` — and republishes every table whenever it starts. ``HolidayFollower`` reads
the topic from the beginning (no consumer group: every process sees every table) and keeps
``.calendar``: the packaged calendar (``shared.workdays``) overlaid by the tables followed.
So dispatch, intake, SLA, notify and insight count working days on one calendar, and a
table loaded once moves every service's deadlines alike (docs/rules.md, Time rules).

A table replaces the year's previous one when it was loaded later; a republished table is
ignored. ``on_change(year, old, new)`` is called, in the follower's task, with the
calendars before and after a table took effect, so the owner of a deadline can move it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from shared.orgfollow import TopicFollower, publish_record
from shared.workdays import HolidayTable, WorkingCalendar

log = logging.getLogger(__name__)

HOLIDAY_TOPIC = "holiday-tables"  # ServiceSettings.holiday_topic's default
TABLE_TYPE = "holiday.table"


@dataclass(frozen=True)
class LoadedTable:
    """A year's schedule as the directory published it: who loaded it and when."""

    table: HolidayTable
    loaded_at: datetime
    loaded_by: str

    def document(self) -> dict[str, Any]:
        return {
            "year": self.table.year,
            "holidays": sorted(d.isoformat() for d in self.table.holidays),
            "workdays": sorted(d.isoformat() for d in self.table.workdays),
            "loaded_at": self.loaded_at.isoformat(),
            "loaded_by": self.loaded_by,
        }


def table_key(year: int) -> bytes:
    return str(year).encode()


def encode_table(loaded: LoadedTable, *, source: str = "directory") -> tuple[bytes, list[tuple[str, bytes]]]:
    """(value, headers) of one table's record: CloudEvents binary mode like the org snapshots."""
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", uuid.uuid4().hex.encode()),
        ("ce_type", TABLE_TYPE.encode()),
        ("ce_source", source.encode()),
        ("ce_subject", f"holidays@{loaded.table.year}".encode()),
        ("ce_time", loaded.loaded_at.isoformat().encode()),
        ("content-type", b"application/json"),
    ]
    return orjson.dumps(loaded.document()), headers


def decode_table(value: bytes | None, headers: Any = ()) -> LoadedTable | None:
    """The table of one record; None when the record is not a table. ``ValueError`` when it
    claims to be one and is unusable (not JSON, dates outside the year, no loaded_at)."""
    ce_type = next((v for k, v in headers or () if k == "ce_type"), None)
    if ce_type is not None and ce_type != TABLE_TYPE.encode():
        return None
    if value is None:
        raise ValueError("empty holiday table record")
    try:
        body = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"holiday table is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("holiday table is not a JSON object")
    try:
        table = HolidayTable.parse(body)
        loaded_at = datetime.fromisoformat(str(body["loaded_at"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"holiday table lacks {exc}") from None
    if loaded_at.tzinfo is None:
        raise ValueError("holiday table's loaded_at has no time zone")
    return LoadedTable(table, loaded_at, str(body.get("loaded_by") or ""))


async def publish_table(bootstrap_servers: str, topic: str, loaded: LoadedTable) -> None:
    """Put one table on the topic as the directory would (for tests and tools; the topic must exist)."""
    value, headers = encode_table(loaded, source="tool")
    await publish_record(bootstrap_servers, topic, value, key=table_key(loaded.table.year), headers=headers)


CalendarChange = Callable[[int, WorkingCalendar, WorkingCalendar], None]


class HolidayFollower(TopicFollower):
    """Follows ``topic``; ``.calendar`` is the packaged calendar overlaid by every table seen."""

    name = "holiday-follower"

    def __init__(
        self, bootstrap_servers: str, topic: str = HOLIDAY_TOPIC, *, on_change: CalendarChange | None = None,
        retry_seconds: float = 1.0, fetch_wait_ms: int = 5_000,
    ) -> None:  # fmt: skip
        super().__init__(bootstrap_servers, topic, retry_seconds=retry_seconds, fetch_wait_ms=fetch_wait_ms)
        self.tables: dict[int, LoadedTable] = {}
        self.calendar = WorkingCalendar()  # the package alone until a table arrives
        self.on_change: list[CalendarChange] = [on_change] if on_change else []
        self.skipped = 0

    def table(self, year: int) -> LoadedTable | None:
        return self.tables.get(year)

    async def wait_for(self, year: int, loaded_at: datetime, timeout: float = 15) -> WorkingCalendar:
        """Wait until the table of ``year`` loaded at ``loaded_at`` (or later) is followed (for tests)."""
        def followed() -> bool:
            have = self.tables.get(year)
            return have is not None and have.loaded_at >= loaded_at

        if not await self._wait_until(followed, timeout):
            raise TimeoutError(f"holiday table {year} loaded at {loaded_at} not seen in {timeout}s")
        return self.calendar

    def apply(self, value: bytes | None, headers: Any = (), *, where: str = "") -> bool:
        """Take one record; True when it changed the calendar. Pure of I/O, so tests may feed it."""
        try:
            loaded = decode_table(value, headers)
        except ValueError as exc:
            self.skipped += 1
            log.error("skipping an unusable holiday table %s: %s", where, exc)
            return False
        if loaded is None:
            return False
        year = loaded.table.year
        have = self.tables.get(year)
        if have is not None and have.loaded_at >= loaded.loaded_at:
            return False  # republished, or older than the one we follow
        old = self.calendar
        self.tables[year] = loaded
        self.calendar = old.with_table(loaded.table)
        log.info("holiday table %d (loaded %s) from %s", year, loaded.loaded_at.isoformat(), self.topic)
        for callback in self.on_change:
            try:
                callback(year, old, self.calendar)
            except Exception:
                log.exception("on_change failed for holiday table %d", year)
        self._changed_now()
        return True
