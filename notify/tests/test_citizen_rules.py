"""The citizen page's look-up code rules (notify/citizen.py), pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notify import citizen
from notify.citizen import CodeRules, LatestCode, check_code, send_refused_until

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a pinned moment; every time below is relative to it
RULES = CodeRules(minutes=10, max_failures=3, resend_seconds=60, per_hour=5)


def code(failures: int = 0, used: bool = False, issued: datetime = T0) -> LatestCode:
    return LatestCode(issued_at=issued, expires_at=issued + timedelta(minutes=10), failures=failures,
                      used_at=issued + timedelta(minutes=1) if used else None)  # fmt: skip


def test_a_code_is_six_digits_bound_to_its_case() -> None:
    value, digest = citizen.new_code("case-1")
    assert len(value) == 6 and value.isdigit()
    assert digest == citizen.code_hash("case-1", value)
    assert digest != citizen.code_hash("case-2", value)  # the same digits do not open another case
    assert value not in digest


def test_the_right_code_opens_once() -> None:
    assert check_code(code(), matches=True, now=T0 + timedelta(minutes=1), rules=RULES).verdict == "ok"
    assert check_code(code(used=True), matches=True, now=T0 + timedelta(minutes=2), rules=RULES).verdict == "none"
    assert check_code(None, matches=False, now=T0, rules=RULES).verdict == "none"


def test_a_code_expires() -> None:
    assert check_code(code(), matches=True, now=T0 + timedelta(minutes=9, seconds=59), rules=RULES).verdict == "ok"
    assert check_code(code(), matches=True, now=T0 + timedelta(minutes=10), rules=RULES).verdict == "expired"


def test_the_third_wrong_code_locks_it_even_for_the_right_one_after() -> None:
    now = T0 + timedelta(minutes=1)
    first = check_code(code(0), matches=False, now=now, rules=RULES)
    assert (first.verdict, first.failures, first.tries_left) == ("wrong", 1, 2)
    second = check_code(code(1), matches=False, now=now, rules=RULES)
    assert (second.verdict, second.failures, second.tries_left) == ("wrong", 2, 1)
    third = check_code(code(2), matches=False, now=now, rules=RULES)
    assert (third.verdict, third.failures) == ("locked", 3)
    assert check_code(code(3), matches=True, now=now, rules=RULES).verdict == "locked"


def test_codes_are_sent_at_most_once_a_minute() -> None:
    assert send_refused_until([], None, T0, RULES) is None
    assert send_refused_until([T0], code(), T0 + timedelta(seconds=30), RULES) == T0 + timedelta(seconds=60)
    assert send_refused_until([T0], code(), T0 + timedelta(seconds=60), RULES) is None


def test_codes_are_sent_at_most_five_an_hour() -> None:
    sent = [T0 + timedelta(minutes=2 * k) for k in range(5)]
    now = T0 + timedelta(minutes=20)
    assert send_refused_until(sent, code(issued=sent[-1]), now, RULES) == T0 + timedelta(hours=1)
    assert send_refused_until(sent, code(issued=sent[-1]), T0 + timedelta(hours=1), RULES) is None


def test_a_locked_code_holds_new_codes_until_it_would_have_expired() -> None:
    locked = code(failures=3)
    assert send_refused_until([T0], locked, T0 + timedelta(minutes=5), RULES) == T0 + timedelta(minutes=10)
    assert send_refused_until([T0], locked, T0 + timedelta(minutes=10), RULES) is None
