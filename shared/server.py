"""How every service is served: uvicorn, with the limits a server facing the public needs.

uvicorn has no timeout for reading a request's head: a client that opens a connection and
sends nothing, or sends its headers a byte at a time (slowloris), holds the connection for
ever — its keep-alive timer only runs between requests. ``GuardedHttpProtocol`` (uvicorn's
httptools protocol, handed to uvicorn through its ``http`` setting) adds that timeout, and
bounds how long the unread rest of a body is drained after an early answer (413, 408). The
body's own read deadline is an ASGI middleware (``shared.http.BodyReadTimeout``), since its
answer (408) is a problem document like every other.
"""

from __future__ import annotations

import asyncio
from asyncio import TimerHandle
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.problems import MEDIA_TYPE, PROBLEM_BASE
from shared.settings import ServiceSettings

# Longer than the idle timeout of whatever keeps connections open to us (load balancers use
# 60 s): with uvicorn's 5 s, a client reusing a connection just as the server closes it gets
# a reset instead of an answer.
KEEP_ALIVE_SECONDS = 75

_HEAD_TIMEOUT_BODY = (
    b'{"type":"' + PROBLEM_BASE.encode() + b'request-timeout","title":"Request timeout","status":408,'
    b'"detail":"the request headers did not arrive in time"}'
)
_HEAD_TIMEOUT_ANSWER = b"".join([
    b"HTTP/1.1 408 Request Timeout\r\n",
    b"content-type: " + MEDIA_TYPE.encode() + b"\r\n",
    b"content-length: " + str(len(_HEAD_TIMEOUT_BODY)).encode() + b"\r\n",
    b"connection: close\r\n\r\n",
    _HEAD_TIMEOUT_BODY,
])  # fmt: skip


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on reading a request's head.

    The head (request line and headers) must be complete ``header_timeout`` seconds after
    the connection opens, or after its first byte on a reused connection (the wait between
    requests is uvicorn's keep-alive timeout). A head begun and not finished is answered
    408; a connection that never said anything is just closed. After an answer given before
    the body was read through, the rest of the body is read and discarded — so the client
    gets to read the answer instead of a reset — for at most ``drain_timeout`` seconds.
    """

    header_timeout: float = 20.0
    drain_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard: TimerHandle | None = None
        self._in_head = False  # a request's first byte arrived, its headers are not complete
        self._in_body = False  # a request's headers are complete, its body is not

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._arm(self.header_timeout)  # no-op on a new connection: its clock runs already

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._in_body = True
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()  # ends a drain: the rest of the body has come
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Answered before the body was read through, and no later request has started.
        if self._in_body and self.cycle.response_complete and not self.transport.is_closing():
            self._arm(self.drain_timeout)

    def _arm(self, seconds: float) -> None:
        if self._guard is None:
            self._guard = self.loop.call_later(seconds, self._time_out)

    def _disarm(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None

    def _time_out(self) -> None:
        self._guard = None
        if self.transport.is_closing():
            return
        if self._in_head:
            self.transport.write(_HEAD_TIMEOUT_ANSWER)
        self.transport.close()


def guarded_protocol(header_timeout: float, drain_timeout: float) -> type[GuardedHttpProtocol]:
    """``GuardedHttpProtocol`` with these timeouts (uvicorn builds the protocol itself)."""
    return type(
        "GuardedHttpProtocol", (GuardedHttpProtocol,), {"header_timeout": header_timeout, "drain_timeout": drain_timeout}
    )


def _setting(settings: Any, name: str) -> Any:
    """``settings.<name>``, or ServiceSettings' default for apps with settings of their own
    (the issuer, the console and the receiver do not derive from ServiceSettings)."""
    return getattr(settings, name, ServiceSettings.model_fields[name].default)


def server_config(app: Any, settings: Any, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration every service runs with (``serve`` and the tests' ``running``)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "http": guarded_protocol(
            _setting(settings, "header_read_timeout_seconds"), _setting(settings, "body_read_timeout_seconds")
        ),
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "timeout_graceful_shutdown": int(_setting(settings, "shutdown_grace_seconds")),
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


# uvicorn's main loop wakes every 100 ms to look whether it should stop (and, every tenth
# time, to renew the Date header): ten wake-ups a second in every process of the platform,
# idle or not. Once a second is enough for the Date header (it has one-second resolution);
# a stop request wakes the loop at once instead of being found by the next tick.
TICK_SECONDS = 1.0


class Server(uvicorn.Server):
    """uvicorn's server, waking once a second instead of ten times, and at once when told to stop
    (a signal, or ``should_exit = True`` as the tests' ``RunningService`` does)."""

    def __init__(self, config: uvicorn.Config, *, on_loop: Callable[[asyncio.AbstractEventLoop], None] | None = None) -> None:
        self._exit_wake: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._on_loop = on_loop  # called once with the serving loop (shared.dumps' task dump)
        super().__init__(config)

    @property  # type: ignore[override]
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if value and self._exit_wake is not None:
            loop, event = self._exit_wake
            # Thread-safe and signal-safe: a signal handler runs between two steps of the loop.
            loop.call_soon_threadsafe(event.set)

    async def main_loop(self) -> None:
        self._exit_wake = (asyncio.get_running_loop(), asyncio.Event())
        if self._on_loop is not None:
            self._on_loop(self._exit_wake[0])
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            # on_tick renews the Date header when the counter is a multiple of 10 (uvicorn
            # counts tenths of a second): every tick here is a whole second.
            counter = (counter + 10) % 864000
            try:
                await asyncio.wait_for(self._exit_wake[1].wait(), TICK_SECONDS)
            except TimeoutError:
                pass
            should_exit = await self.on_tick(counter)
