"""`make run` as a person uses it: one command brings everything up; Ctrl-C takes it down."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.dev.devstack import free_port, port_is_free
from services.dev.launcher import DEMO_APPEALS, SERVICES
from shared.testing import CENTRE

ROOT = Path(__file__).resolve().parents[2]


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            lines += proc.stdout.readlines()
            raise AssertionError(f"launcher exited ({proc.returncode}):\n" + "".join(lines))
        line = proc.stdout.readline()
        if line:
            lines.append(line)
            if needle in line:
                return lines
        else:
            time.sleep(0.1)
    raise AssertionError(f"no {needle!r} within {timeout}s:\n" + "".join(lines))


def _own_ports(tmp_path: Path) -> dict[str, str]:
    """The environment for a launcher of the test's own: embedded servers, a free port for every
    service and server, its own run directory (never a developer's `make run` or `.run`)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"))}
    env.update({f"{s.prefix}PORT": str(free_port()) for s in SERVICES})
    env.update({"POSTGRES_PORT": str(free_port()), "KAFKA_PORT": str(free_port()), "JIESU_RUN_DIR": str(tmp_path / "run")})
    return env


@pytest.mark.slow
def test_make_run_starts_everything_and_ctrl_c_stops_it(tmp_path):
    env = _own_ports(tmp_path)
    ports = {s.name: int(env[f"{s.prefix}PORT"]) for s in SERVICES}
    # Its own process group, so that even a launcher that dies takes its services with it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.dev.launcher"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        output = "".join(_wait_for_line(proc, "Ctrl-C stops everything", timeout=240))
        for name, port in ports.items():
            assert f"http://127.0.0.1:{port}/docs" in output
            ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
            assert ready.status_code == 200, (name, ready.text)
        streetlamp = dict(DEMO_APPEALS)["demo-streetlamp"]["title"]  # 城中社区's, filed by the grid worker
        assert "demo appeals:" in output and streetlamp in output
        case_id = output.split(f"{streetlamp}  (case ")[1].split(")")[0]
        # The demo streetlamp goes on by itself: the catalogue dispatches it to 住建局.
        deadline = time.monotonic() + 60
        while True:
            appeal = httpx.get(f"http://127.0.0.1:{ports['intake']}/api/v1/appeals/{case_id}", headers=CENTRE, timeout=5)
            assert appeal.status_code == 200
            if appeal.json()["status"] == "dispatched" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert (appeal.json()["status"], appeal.json()["subject_class"]) == ("dispatched", "infrastructure")
        assert any("住房和城乡建设局" in (e["detail"] or "") for e in appeal.json()["timeline"])

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        for name, port in ports.items():
            assert port_is_free(port), f"{name} still holds port {port}"
        assert port_is_free(int(env["KAFKA_PORT"])) and port_is_free(int(env["POSTGRES_PORT"]))
    finally:
        _stop_everything(proc)


def _launcher_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"))}
    env.update({f"{s.name.upper()}_PORT": str(free_port()) for s in SERVICES})
    env.update({"POSTGRES_PORT": str(free_port()), "KAFKA_PORT": str(free_port()), "JIESU_RUN_DIR": str(tmp_path / "run")})
    return env


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie waits for init to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
def test_sigterm_to_the_process_group_twice_still_stops_everything(tmp_path):
    """As systemd and `docker stop` do — and `make run`, whose group gets SIGTERM from the
    sender and again from make: the second signal arrives while the launcher stops, and must
    not cut the stop short and orphan PostgreSQL and the broker."""
    env = _launcher_env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.dev.launcher", "--no-seed"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    pids: set[int] = set()
    try:
        output = "".join(_wait_for_line(proc, "Ctrl-C stops everything", timeout=240))
        pids = {int(pid) for pid in re.findall(r"\(pid (\d+)\)", output)}
        assert len(pids) == len(SERVICES) + 2, output  # every service, PostgreSQL, the broker
        assert all(_alive(pid) for pid in pids)

        os.killpg(proc.pid, signal.SIGTERM)
        time.sleep(0.3)  # the launcher is stopping the services now
        os.killpg(proc.pid, signal.SIGTERM)

        assert proc.wait(90) == 0
        rest = proc.stdout.read() if proc.stdout else ""
        assert "stopped." in rest, rest
        # PostgreSQL removes its pid file (which ends pg_ctl's wait) just before it exits.
        deadline = time.monotonic() + 10
        while (left := sorted(pid for pid in pids if _alive(pid))) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, f"still running 10 s after the launcher exited: {left}\n{output}{rest}"
        for name in ("POSTGRES_PORT", "KAFKA_PORT"):
            assert port_is_free(int(env[name])), f"{name} {env[name]} still taken"
    finally:
        _stop_everything(proc)
        for pid in pids:  # what a failed stop orphaned is not left behind
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)


def _stop_everything(proc: subprocess.Popen[str]) -> None:
    """Ask the launcher to stop what it started (SIGTERM); if it will not, kill its group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_a_busy_port_is_named_with_the_variable_to_change(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # Every other port is one of our own choosing: the defaults (8001–8008, 8090) are taken
        # whenever a developer has `make run` up, and the launcher names the first busy one.
        env = _own_ports(tmp_path)
        env["DISPATCH_PORT"] = str(port)
        result = subprocess.run(
            [sys.executable, "-m", "services.dev.launcher"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    assert result.returncode != 0
    assert f"port {port} for dispatch is in use; set DISPATCH_PORT to another port" in result.stderr + result.stdout
