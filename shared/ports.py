"""TCP ports: is one free, and a free one. One place for the launcher, the services and the tests."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Mapping


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


# Every port free_port handed out in this process: see there.
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """An unused TCP port on ``host``, chosen by the kernel, and never one this process was
    given before.

    Ports for several servers are often chosen before any of them binds, and the kernel may
    give the same free port to two calls in a row (the first is free again until its server
    starts): the second server then fails to bind. Another process can still take a port
    before you use it."""
    for _ in range(100):
        with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no port on {host} that was not handed out before, after 100 tries")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now.

    SO_REUSEADDR mirrors what PostgreSQL, Tansu and uvicorn do themselves: a port held only
    by TIME_WAIT connections of a server we just stopped counts as free (the server can
    rebind it), while a port something is listening on counts as taken.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.y.z`` or ``::1`` (brackets allowed): a development tool may listen there."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exit_unless_port_free(name: str, host: str, port: int, variable: str) -> None:
    """``python -m <service>`` on a busy port: say which setting moves it, exit 2."""
    if not port_is_free(port, host):
        print(f"{name}: port {port} on {host} is in use; set {variable} to another port", file=sys.stderr)
        raise SystemExit(2)


# -- replicas -----------------------------------------------------------------------------

#: Replica k of a service listens on the service's port + REPLICA_PORT_STEP·k.
REPLICA_PORT_STEP = 100


def replica_count(prefix: str, environ: Mapping[str, str]) -> int:
    """How many replicas of the service whose variables start with ``prefix`` the deployment
    runs (``<SERVICE>_REPLICAS``, default 1); ``ValueError`` unless a whole number ≥ 1."""
    raw = environ.get(f"{prefix}REPLICAS", "1")
    try:
        replicas = int(raw)
    except ValueError:
        raise ValueError(f"{prefix}REPLICAS must be a whole number, not {raw!r}") from None
    if replicas < 1:
        raise ValueError(f"{prefix}REPLICAS must be at least 1")
    return replicas


def replica_ports(base: int, replicas: int) -> list[int]:
    """The port of each replica, replica 0 first: the launcher starts them there and the ops
    tool looks for them there."""
    return [base + REPLICA_PORT_STEP * k for k in range(replicas)]
