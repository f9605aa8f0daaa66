"""The database is down: say so honestly (503 with ``Retry-After``) and log it once.

While PostgreSQL is down or restarting every request that needs it fails the same way;
a traceback per request buries the one line that matters. ``database_unavailable`` tells
an outage from a bug (a pure look at the exception and what caused it), and
``DatabaseOutage`` logs the first failure of an outage and the recovery, counting what was
refused in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator

import asyncpg
from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

#: What a client is told to wait before trying again (seconds): a restart takes a few.
RETRY_AFTER_SECONDS = 5

# Server-side answers that mean "not now" rather than "wrong statement": shutting down,
# starting up, out of connection slots.
_UNAVAILABLE_SERVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # includes ConnectionDoesNotExistError (closed mid-operation)
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's ``orig``) and what caused it, once each."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([getattr(current, "orig", None), current.__cause__, current.__context__])


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database could not be reached or dropped the connection
    (refused, reset, shut down, starting up), not that a statement was wrong."""
    for current in _chain(exc):
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, _UNAVAILABLE_SERVER_ERRORS):
            return True
        # Refused or reset: the socket layer's word (a new asyncpg connection raises it bare).
        if isinstance(current, ConnectionError):
            return True
        # A pooled connection left half-way by the server's crash ("cannot switch to state …;
        # another operation is in progress"): seen in the fault test right after PostgreSQL
        # was killed. Nothing about the request was wrong — it is retryable like a refusal,
        # and the connection is discarded (``connection_broken``).
        if isinstance(current, asyncpg.InternalClientError):
            return True
        # A pooled connection the server dropped while it sat idle (a restart, an idle
        # backend terminated): the driver noticed and refuses it before sending anything.
        # SQLAlchemy's asyncpg dialect counts the same words as a disconnect.
        if isinstance(current, asyncpg.InterfaceError) and "connection is closed" in str(current):
            return True
    return False


def connection_broken(exc: BaseException) -> bool:
    """True when a connection that raised ``exc`` must not be used again: it failed
    mid-operation — cut off, cancelled or timed out while a statement ran, or with asyncpg's
    protocol left half-way ("cannot switch to state …"). An error the server reported on a
    connection still in step (a unique violation, a bad statement) or the caller's own
    exception leaves it usable."""
    for current in _chain(exc):
        if isinstance(current, (asyncpg.InterfaceError, asyncpg.InternalClientError, asyncio.CancelledError, TimeoutError)):
            return True
    return database_unavailable(exc)


class DatabaseOutage:
    """One service's view of whether its database is down: one log line when an outage
    starts, one when it ends, none per request in between."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.since: float | None = None
        self.refused = 0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> bool:
        """Record a request refused for want of the database; True for the outage's first."""
        self.refused += 1
        if self.since is not None:
            return False
        self.since = time.monotonic()
        log.error(
            "%s: database unavailable (%s: %s); answering 503 until it is back, further failures not logged",
            self.service, type(exc).__name__, exc,
        )
        return True

    def reachable(self) -> bool:
        """A connection to the database succeeded; True when that ends an outage."""
        if self.since is None:
            return False
        lasted, refused = time.monotonic() - self.since, self.refused
        self.since, self.refused = None, 0
        log.warning("%s: database reachable again after %.1fs; %d request(s) were answered 503", self.service, lasted, refused)
        return True
