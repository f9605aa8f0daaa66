"""The days ``make test-dates`` moves the clock to (tests/dates.py), from pinned real nows."""

from datetime import UTC, datetime, timedelta

from tests.dates import BEIJING, covered, new_year_eve, offset, spring_festival

NOW = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)


def test_spring_festival_is_10_february_of_the_first_later_year_the_package_does_not_know():
    target = spring_festival(NOW)
    assert target > NOW and (target.month, target.day, target.hour, target.tzinfo) == (2, 10, 10, BEIJING)
    assert not covered(target.year)
    for year in range(NOW.year, target.year):  # every year before it is known or already past
        assert covered(year) or datetime(year, 2, 10, 10, tzinfo=BEIJING) <= NOW


def test_the_package_knows_its_years_and_not_the_others():
    assert covered(2020)
    assert not covered(2003) and not covered(2100)


def test_new_year_eve_is_this_year_in_beijing():
    assert new_year_eve(NOW) == datetime(2026, 12, 31, 15, 30, tzinfo=UTC)
    # 00:30 on 1 Jan in Beijing is still 31 Dec in UTC: the year is Beijing's.
    assert new_year_eve(datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == datetime(2027, 12, 31, 23, 30, tzinfo=BEIJING)


def test_offsets_are_signed_whole_seconds():
    assert offset(NOW, NOW + timedelta(days=1, seconds=0.6)) == "+86401"
    assert offset(NOW, NOW - timedelta(seconds=90)) == "-90"
