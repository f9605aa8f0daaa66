"""The days ``make test-dates`` runs the quick tests on, as libfaketime offsets from the real now.

A suite that is green only on the day it was written rots: dates written into tests fall into
the past, a fixture built from ``datetime.now()`` lands on a weekend or a holiday. Two days
catch most of it, and both are computed from the real clock each time, so they stay ahead:

* ``spring-festival``: 10 February 10:00 Beijing of the first year (after the real now) that
  ``chinese-calendar`` does not cover — Spring Festival week, in a year whose holidays the
  platform does not know until an administrator loads the table;
* ``new-year-eve``: 31 December 23:30 Beijing (15:30 UTC) of this year, so that the run
  crosses midnight into the next year.

``python -m tests.dates`` prints one line per day, ``<name> <offset> <target>``, where the
offset is whole seconds in the relative form libfaketime takes (``faketime -f '+5700000'``).
Relative offsets keep time moving (an absolute ``@date`` freezes ``time.sleep`` under the
embedded servers). ``python -m tests.dates -- <pytest arguments>`` runs pytest under
``faketime`` on each day in turn (``make test-dates``) and fails if any run fails.

The shift reaches every process the tests start: ``faketime`` sets ``LD_PRELOAD``, which the
embedded PostgreSQL, the broker and service processes inherit, so ``now()`` in the database,
the broker's record times and the services' clocks all agree with the test's.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import chinese_calendar

BEIJING = ZoneInfo("Asia/Shanghai")


def covered(year: int) -> bool:
    """Whether ``chinese-calendar`` knows the year's holidays (it raises for a year it does not)."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


def spring_festival(now: datetime) -> datetime:
    """10 Feb 10:00 Beijing of the first year after ``now`` that the package does not cover."""
    year = now.astimezone(BEIJING).year
    while True:
        target = datetime(year, 2, 10, 10, tzinfo=BEIJING)
        if target > now and not covered(year):
            return target
        year += 1


def new_year_eve(now: datetime) -> datetime:
    """31 Dec 23:30 Beijing of ``now``'s year in Beijing."""
    return datetime(now.astimezone(BEIJING).year, 12, 31, 23, 30, tzinfo=BEIJING)


def offset(now: datetime, target: datetime) -> str:
    """A relative libfaketime offset in whole seconds, signed (``+123``, ``-45``)."""
    seconds = round((target - now).total_seconds())
    return f"{seconds:+d}"


def targets(now: datetime) -> dict[str, datetime]:
    return {"spring-festival": spring_festival(now), "new-year-eve": new_year_eve(now)}


def main(argv: list[str]) -> int:
    now = datetime.now(UTC)
    days = targets(now)
    if not argv:
        for name, target in days.items():
            sys.stdout.write(f"{name} {offset(now, target)} {target.isoformat()}\n")
        return 0
    pytest_args = argv[1:] if argv[0] == "--" else argv
    failed = []
    for name, target in days.items():
        # Each offset is taken just before its run, so the run starts on the day itself.
        shift = offset(datetime.now(UTC), target)
        print(f"== {name}: the clock moved to {target.isoformat()} (faketime {shift} s)", flush=True)
        run = subprocess.run(["faketime", "-f", shift, sys.executable, "-m", "pytest", *pytest_args], check=False)
        if run.returncode != 0:
            failed.append(name)
    if failed:
        print(f"== failed on: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
