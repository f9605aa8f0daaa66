"""What counts as the database being unavailable (answered 503 with Retry-After, retryable)
and which connections must not be used again (``shared.outage``)."""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc as sa_exc

from shared.outage import connection_broken, database_unavailable


def test_a_connection_left_half_way_by_a_crash_is_an_outage_not_a_server_error():
    # Seen in the fault test right after kill -9 of PostgreSQL: a filing answered 500.
    half_way = asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress")
    assert database_unavailable(half_way) and connection_broken(half_way)
    wrapped = sa_exc.DBAPIError("INSERT …", {}, half_way)
    assert database_unavailable(wrapped)


def test_refusals_are_outages_and_a_bad_statement_is_not():
    assert database_unavailable(ConnectionRefusedError(111, "Connection refused"))
    bad = asyncpg.UniqueViolationError("duplicate key value")
    assert not database_unavailable(bad) and not connection_broken(bad)


def test_a_pooled_connection_the_server_dropped_is_an_outage_and_a_busy_one_is_not():
    # The driver refuses a connection it saw closed (a database restart while it sat in the
    # pool): retryable, a 503, as SQLAlchemy's dialect counts it a disconnect.
    closed = asyncpg.InterfaceError("connection is closed")
    assert database_unavailable(closed) and connection_broken(closed)
    # Two operations at once on one connection is this code's mistake, not an outage.
    busy = asyncpg.InterfaceError("cannot perform operation: another operation is in progress")
    assert not database_unavailable(busy) and connection_broken(busy)
