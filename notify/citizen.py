"""The citizen's page (NOTIFY_RATING_URL): the rules of its one-time look-up codes, free of
I/O (pure functions, tested without a database).

- A citizen looks up an appeal by its tracking number (编号) with a one-time code sent by SMS
  to the phone the appeal was filed with; notify holds the phone (sealed) and the SMS channel.
- A code has 6 digits, is stored only as a hash bound to its case, lives ``minutes`` minutes,
  opens the look-up once, and only the case's latest code counts (a new one replaces it).
- A wrong code counts; after ``max_failures`` wrong tries the code is locked (dead) and no
  new code is sent until the locked one would have expired.
- Sending is rate-limited per appeal: one code per ``resend_seconds``, at most ``per_hour``
  an hour (the SMS costs, and the phone's owner must not be flooded).

The rating link's token follows ``domain.check_token`` (bound to case and round, one use).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

CODE_DIGITS = 6


def new_code(case_id: str) -> tuple[str, str]:
    """(code for the SMS, its hash to store): 6 random digits."""
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    return code, code_hash(case_id, code)


def code_hash(case_id: str, code: str) -> str:
    """The stored form: bound to the case, so one case's code never opens another."""
    return hashlib.sha256(f"{case_id}:{code.strip()}".encode()).hexdigest()


@dataclass(frozen=True)
class CodeRules:
    minutes: int = 10
    max_failures: int = 3
    resend_seconds: int = 60
    per_hour: int = 5


@dataclass(frozen=True)
class LatestCode:
    """The case's latest code as stored."""

    issued_at: datetime
    expires_at: datetime
    failures: int
    used_at: datetime | None


def send_refused_until(issued: Iterable[datetime], latest: LatestCode | None, now: datetime, rules: CodeRules) -> datetime | None:
    """None when one more code may be sent now; else the moment one may (for Retry-After)."""
    waits: list[datetime] = []
    times = sorted(t for t in issued if t <= now)
    if times and now < times[-1] + timedelta(seconds=rules.resend_seconds):
        waits.append(times[-1] + timedelta(seconds=rules.resend_seconds))
    hour = [t for t in times if now - timedelta(hours=1) < t]
    if len(hour) >= rules.per_hour:
        waits.append(hour[len(hour) - rules.per_hour] + timedelta(hours=1))
    if latest is not None and latest.failures >= rules.max_failures and now < latest.expires_at:
        waits.append(latest.expires_at)  # locked: guessing resumes only once the locked code is dead anyway
    return max(waits) if waits else None


Verdict = Literal["ok", "wrong", "locked", "expired", "none"]


@dataclass(frozen=True)
class CodeCheck:
    verdict: Verdict
    failures: int  # the count to store
    tries_left: int


def check_code(latest: LatestCode | None, *, matches: bool, now: datetime, rules: CodeRules) -> CodeCheck:
    """A code entered for the case whose latest code is ``latest``: ok (spend it), wrong
    (counted), locked (the last allowed try failed, or an earlier one did), expired, or none
    (no code, or used)."""
    if latest is None or latest.used_at is not None:
        return CodeCheck("none", latest.failures if latest else 0, 0)
    if latest.failures >= rules.max_failures:
        return CodeCheck("locked", latest.failures, 0)
    if now >= latest.expires_at:
        return CodeCheck("expired", latest.failures, 0)
    if matches:
        return CodeCheck("ok", latest.failures, rules.max_failures - latest.failures)
    failures = latest.failures + 1
    if failures >= rules.max_failures:
        return CodeCheck("locked", failures, 0)
    return CodeCheck("wrong", failures, rules.max_failures - failures)
