"""Child processes of the bench: servers under test and the load generator.

Each child runs in its own session, so a Ctrl-C at the terminal reaches only the bench,
which then stops its children by pid, in order, in its ``finally`` blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.core import ROOT, say
from bench.loadgen import Spec, spec_json

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Child:
    """A server process started by the bench; ``stop()`` is safe to call more than once."""

    def __init__(self, name: str, args: list[str], *, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid = self.proc.pid

    async def wait_ok(self, url: str, timeout: float = 90) -> None:
        """Until GET ``url`` answers 200; fail early, naming the log, if the process dies."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{url} not ready after {timeout:.0f} s; see {self.log_path}")

    def stop(self, grace: float = 20) -> None:
        """SIGTERM (a graceful shutdown: the service flushes its outbox), SIGKILL after ``grace``."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def rss_mib(self) -> float:
        """Resident memory now, from /proc."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(status.split("VmRSS:", 1)[1].split()[0]) / 1024

    def peak_rss_mib(self) -> float:
        """The most resident memory the process has had (VmHWM)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(status.split("VmHWM:", 1)[1].split()[0]) / 1024


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine so far, all cores (everything but idle and iowait)."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU a process and its children have used so far (the PostgreSQL postmaster and its
    backends); children that ended meanwhile are not counted."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # itself, or its parent is it
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def busy_percent(seconds: float = 2.0) -> float:
    """How busy the machine is right now, in % of one core: other people's work skews every figure."""
    before = machine_cpu_seconds()
    time.sleep(seconds)
    return 100 * (machine_cpu_seconds() - before) / seconds


def cpu_text(cpu: dict[str, float]) -> str:
    """Who used the cores during a measurement, in % of one core."""
    return (
        f"CPU: server {cpu['server']:.0f}%, load generator {cpu['generator']:.0f}%, "
        f"the rest {cpu['rest']:.0f}% (of {100 * (os.cpu_count() or 1)}%)"
    )


async def drive(spec: Spec, *, server: Child, work_dir: Path) -> dict[str, Any]:
    """Run one load in the generator process; its summary plus who used the CPU meanwhile."""
    result_path = work_dir / f"loadgen-{time.monotonic_ns()}.json"
    server_before, machine_before, started = process_cpu_seconds(server.pid), machine_cpu_seconds(), time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", spec_json(spec), str(result_path), cwd=ROOT, start_new_session=True
    )
    try:
        code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if code != 0:
        raise RuntimeError(f"load generator for {spec.label} exited with {code}")
    wall = time.monotonic() - started
    result = json.loads(result_path.read_text())
    server_cpu = process_cpu_seconds(server.pid) - server_before
    machine = machine_cpu_seconds() - machine_before
    generator_cpu = result["generator_cpu_s"]
    result["cpu"] = {  # % of one core; "rest": PostgreSQL, the broker, the bench, anyone else on the machine
        "server": round(100 * server_cpu / wall),
        "generator": round(100 * generator_cpu / wall),
        "rest": round(100 * max(0.0, machine - server_cpu - generator_cpu) / wall),
    }
    return result


def service_env(name: str, *, database_url: str, bootstrap_servers: str, port: int, topic: str | None = None, **extra: str) -> dict[str, str]:
    """A service's environment for a bench run: ours, minus anything that could point it at
    other servers, plus its own database, broker, port (and topic), logging at WARNING."""
    prefix = f"{name.upper()}_"
    foreign = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefix) and k not in foreign}
    env |= {
        f"{prefix}DATABASE_URL": database_url,
        f"{prefix}KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        f"{prefix}PORT": str(port),
        f"{prefix}LOG_LEVEL": "WARNING",
    }
    if topic is not None:
        env[f"{prefix}KAFKA_TOPIC"] = topic
    return env | {f"{prefix}{key.upper()}": value for key, value in extra.items()}


class Progress:
    """A progress line at most every ``every`` seconds during a long step (and none when quick)."""

    def __init__(self, what: str, total: int | None = None, every: float = 3.0) -> None:
        self.what, self.total, self.every = what, total, every
        self.started = self._last = time.monotonic()

    def update(self, done: int, extra: str = "") -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        elapsed = now - self.started
        of = f" of {self.total:,}" if self.total else ""
        rate = f", {done / elapsed:,.0f}/s" if elapsed > 0 else ""
        say(f"  {self.what}: {done:,}{of} in {elapsed:.0f} s{rate}{'; ' + extra if extra else ''}")
