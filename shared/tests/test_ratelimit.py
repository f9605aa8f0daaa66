"""Sliding-window limits (pure)."""

import pytest

from shared.ratelimit import Rate, RateLimiter, retry_after_header


def test_rates_read_as_people_write_them():
    assert Rate.parse("20/1h") == Rate(20, 3600)
    assert Rate.parse("600/60") == Rate(600, 60)
    assert Rate.parse(" 5 / 30s ") == Rate(5, 30)
    assert Rate.parse("0/1").off
    with pytest.raises(ValueError, match="COUNT/WINDOW"):
        Rate.parse("twenty an hour")


def test_the_next_request_over_the_limit_is_told_when_to_come_back():
    limiter = RateLimiter(Rate(3, 60))
    assert [limiter.check("a", t) for t in (0, 10, 20)] == [None, None, None]
    assert limiter.check("a", 30) == pytest.approx(30)  # the first request leaves at t=60
    assert limiter.check("b", 30) is None, "another key has its own window"
    assert limiter.check("a", 60.5) is None, "the window slid past the first request"
    assert retry_after_header(0.2) == {"Retry-After": "1"}


def test_refused_requests_do_not_count_and_memory_is_bounded():
    limiter = RateLimiter(Rate(1, 10), max_keys=2)
    assert limiter.check("a", 0) is None
    assert limiter.check("a", 1) == pytest.approx(9)
    assert limiter.check("a", 10.1) is None, "the refused try at t=1 did not extend the window"
    limiter.check("b", 11)
    limiter.check("c", 12)  # three keys: the least recently seen ("a") is forgotten
    assert limiter.check("a", 12.5) is None
    assert RateLimiter(Rate(0, 1)).check("x", 0) is None, "0/… means no limit"
