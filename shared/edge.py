"""What every service checks at its edge before a value reaches a rule or the database.

- No NUL character in a path, query or form value: PostgreSQL text cannot hold ``\\x00``
  (and no person types one), so it would fail deep inside a query as a 500. It is refused
  here as a validation error naming the field (a 422 problem, or Open311's own 400).
- Dates and date-times in query parameters are ISO 8601 text, nothing else: pydantic would
  read ``since=0.5`` as a Unix timestamp. And they lie within ``EARLIEST``–``LATEST``, so
  that what the services compute from them — UTC from an offset, the week, month or quarter
  around a day, the periods before it for a trend — stays inside the calendar Python and
  PostgreSQL can hold (``9999-12-31T23:59:59-14:00`` is already the year 10000 in UTC).

The rule is written once here; see docs/rules.md ("Input at the edge").
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Request, params
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BeforeValidator, StringConstraints, WithJsonSchema

#: The first and last day a date parameter may name: one year inside what Python's
#: ``date`` holds (years 1–9999) on either side, room for a period and the trend before it.
EARLIEST = date(2, 1, 1)
LATEST = date(9998, 12, 31)



def nul_fields(values: dict[str, Any]) -> list[str]:
    """Names of the text values that hold a NUL character."""
    return [name for name, value in values.items() if isinstance(value, str) and "\x00" in value]


def _nul_error(where: str, name: str) -> dict[str, Any]:
    return {"type": "string_nul", "loc": (where, name), "msg": "text may not contain NUL characters (\\x00)", "input": None}


def _takes_form(request: Request) -> bool:
    """Whether the matched route reads its body as a form (only then is the form looked at:
    another route's body is its own business, e.g. a signed push read as raw bytes)."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    return body_field is not None and isinstance(body_field.field_info, params.Form)


async def refuse_nul(request: Request) -> None:
    """App-wide dependency: a NUL in a path, query or form value is a validation error naming
    the field, rendered by the service's own validation handler (problem+json, or Open311's)."""
    errors = [_nul_error("path", name) for name in nul_fields(request.path_params)]
    errors += [_nul_error("query", name) for name, value in request.query_params.multi_items() if "\x00" in value or "\x00" in name]
    if _takes_form(request):
        form = await request.form()  # FastAPI parsed it for the route already: this is its cached copy
        errors += [_nul_error("body", name) for name, value in form.multi_items() if isinstance(value, str) and ("\x00" in value or "\x00" in name)]
    if errors:
        raise RequestValidationError(errors)


def _within(day: date) -> None:
    if not EARLIEST <= day <= LATEST:
        raise ValueError(f"must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}")


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date in ISO 8601 (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date in ISO 8601 (YYYY-MM-DD)") from None


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date-time in ISO 8601 (YYYY-MM-DDTHH:MM:SS+08:00)")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date-time in ISO 8601 (YYYY-MM-DDTHH:MM:SS+08:00)") from None


def _iso_month(value: Any) -> Any:
    if isinstance(value, date):
        return value.replace(day=1)
    if not isinstance(value, str) or len(value) != 7 or value[4] != "-" or not (value[:4] + value[5:]).isdigit():
        raise ValueError("must be a month as YYYY-MM")
    try:
        return date(int(value[:4]), int(value[5:]), 1)
    except ValueError:
        raise ValueError("must be a real month as YYYY-MM") from None


def date_in_range(value: date) -> date:
    _within(value)
    return value


def datetime_in_range(value: datetime) -> datetime:
    try:
        instant = value.astimezone(UTC) if value.tzinfo is not None else value
    except OverflowError:
        raise ValueError(f"must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}") from None
    _within(instant.date())
    return value


#: A date parameter: ISO 8601 text within EARLIEST–LATEST (a 422 naming the field otherwise).
IsoDate = Annotated[date, BeforeValidator(_iso_date), AfterValidator(date_in_range)]
#: A date-time parameter: ISO 8601 text whose instant (in UTC) lies within EARLIEST–LATEST.
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_datetime), AfterValidator(datetime_in_range)]
def month_text_in_range(value: str) -> str:
    """A ``YYYY-MM`` text (already matched by its pattern) whose first day lies within
    EARLIEST–LATEST: month 0000-01 is refused with a 422, not turned into a 500 later."""
    year = int(value[:4])
    # Year 0 is no date at all; any other is checked as its month's first day.
    _within(date(year, int(value[5:7]), 1) if year >= 1 else date.min)
    return value


#: A month kept as its ``YYYY-MM`` text (as the grid's duties are), within EARLIEST–LATEST.
MonthText = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$"), AfterValidator(month_text_in_range)]
#: A month parameter ``YYYY-MM``, given to the route as its first day, within EARLIEST–LATEST.
IsoMonth = Annotated[
    date,
    BeforeValidator(_iso_month),
    AfterValidator(date_in_range),
    WithJsonSchema({"type": "string", "pattern": r"^\d{4}-\d{2}$", "examples": ["2026-11"]}),
]
