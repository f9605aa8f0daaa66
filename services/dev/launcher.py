"""``make run``: everything on one machine with one command.

Starts the embedded PostgreSQL (data kept under ``.run/``) and the Tansu Kafka-protocol
broker — unless ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` point at real servers —
then every service as its own process, waits for each to be ready, files the demo
appeals and prints where to look. Ctrl-C or SIGTERM stops everything it started, by pid;
once stopping, further signals (make and the sender both signal the process group) are
only counted, so the stop always finishes — services first, then the broker and PostgreSQL.

Replicas: ``<SERVICE>_REPLICAS=N`` starts N processes of a service sharing its consumer
group; replica k (from 0) listens on the service's port + 100·k.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from shared.ports import REPLICA_PORT_STEP, replica_count, replica_ports

ROOT = Path(__file__).resolve().parents[2]
# JIESU_RUN_DIR moves the data and logs elsewhere (the launcher's own test uses it).
RUN_DIR = Path(os.environ.get("JIESU_RUN_DIR", ROOT / ".run"))
LOG_DIR = RUN_DIR / "logs"


@dataclass(frozen=True)
class ServiceDef:
    name: str  # python -m <module>
    module: str
    port: int
    what: str

    @property
    def prefix(self) -> str:
        return self.name.upper() + "_"


SERVICES = (
    # First, so its keys are up before a service verifies a token (AUTH_MODE=jwt). Not for replicas.
    ServiceDef("issuer", "services.dev.issuer", 8007, "development sign-in: tokens for the demo users (POST /token)"),
    ServiceDef("receiver", "services.dev.receiver", 8090, "development message receiver (SMS, WeChat, 12345 webhook): GET /messages"),
    ServiceDef("directory", "services.directory", 8006, "组织架构与派单目录: units, users, the catalogue (topic org-directory)"),
    ServiceDef("intake", "intake", 8001, "appeals in: REST, 12345 push, Open311"),
    ServiceDef("dispatch", "dispatch", 8002, "乡呼县应: orders, sign/return, calls, verification"),
    ServiceDef("sla", "sla", 8003, "working-day clocks, yellow/red cards, 督办"),
    ServiceDef("scoring", "scoring", 8004, "rates, two-way evaluation, bulletins"),
    ServiceDef("notify", "notify", 8005, "回访, ratings, messages, 12345 status"),
    ServiceDef("insight", "services.insight", 8009, "未诉先办: rising, same-spot and persistent problems (hotspot.detected)"),
    ServiceDef("console", "services.console", 8008, "指挥中心工作台: the command-centre console (pages at /)"),
)

# (idempotency key, appeal): filing them again on the next `make run` is a no-op.
DEMO_APPEALS = (
    ("demo-streetlamp", {
        "title": "西宁街一排路灯不亮",
        "description": "城中社区西宁街西门至土司练兵场一段的一排路灯一直不亮，晚上出行不安全。（数字平安忻城：网格员上报）",
        "channel": "grid",
        "contact": {"name": "网格员小潘", "phone": "13800000001"},
        "location": {"address": "忻城县城关镇城中社区西宁街"},
    }),
    ("demo-fishpond-guardrail", {
        "title": "鱼塘边需要安装护栏",
        "description": "江龙村村道旁的鱼塘边没有护栏，孩子放学经过很危险，请求安装护栏。",
        "channel": "app",
        "contact": {"name": "村民甘某", "phone": "13800000002"},
        "location": {"address": "武宣县通挽镇江龙村"},
    }),
)


class Launcher:
    def __init__(self, *, seed: bool = True) -> None:
        self.seed = seed
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.postgres = None
        self.broker = None
        # Set by the first SIGINT/SIGTERM (or when stopping for another reason): from then on
        # a signal is only counted, never raised into the middle of stop().
        self.stopping = False
        self.signals_while_stopping = 0

    # -- infrastructure ---------------------------------------------------------------

    def start_infrastructure(self) -> tuple[str, str]:
        from services.dev.devstack import EmbeddedPostgres, TansuBroker

        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            port = int(os.environ.get("POSTGRES_PORT", "5432"))
            say(f"starting embedded PostgreSQL on 127.0.0.1:{port} (data in .run/postgres)")
            self.postgres = EmbeddedPostgres(RUN_DIR / "postgres", port, log_path=LOG_DIR / "postgres.log")
            self.postgres.start()
            say(f"PostgreSQL running (pid {self.postgres.pid})")
            database_url = self.postgres.url
        else:
            say("using the PostgreSQL server in DATABASE_URL")
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            port = int(os.environ.get("KAFKA_PORT", "9092"))
            say(f"starting the embedded Kafka-protocol broker (Tansu, in memory) on 127.0.0.1:{port}")
            self.broker = TansuBroker(port, log_path=LOG_DIR / "broker.log")
            self.broker.start()
            say(f"broker running (pid {self.broker.pid})")
            bootstrap = self.broker.bootstrap_servers
        else:
            say(f"using the Kafka brokers in KAFKA_BOOTSTRAP_SERVERS ({bootstrap})")
        return database_url, bootstrap

    # -- services ---------------------------------------------------------------------

    def plan(self) -> list[tuple[ServiceDef, int, int]]:
        """(service, replica index, port) for every process to start."""
        out = []
        for service in SERVICES:
            base = int(os.environ.get(f"{service.prefix}PORT", service.port))
            try:
                replicas = replica_count(service.prefix, os.environ)
            except ValueError as exc:
                raise SystemExit(str(exc)) from None
            out.extend((service, k, port) for k, port in enumerate(replica_ports(base, replicas)))
        return out

    def check_ports(self, plan: list[tuple[ServiceDef, int, int]]) -> None:
        from services.dev.devstack import port_is_free

        for service, replica, port in plan:
            if not port_is_free(port):
                hint = f"{service.prefix}PORT" if replica == 0 else f"{service.prefix}PORT (replica {replica} uses port + {REPLICA_PORT_STEP * replica})"
                raise SystemExit(f"port {port} for {service.name} is in use; set {hint} to another port")

    def start_services(self, plan: list[tuple[ServiceDef, int, int]], database_url: str, bootstrap: str) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        for service, replica, port in plan:
            env = dict(os.environ)
            env.setdefault("DATABASE_URL", database_url)
            env.setdefault("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            # notify delivers to the development receiver unless real endpoints are configured
            receiver = f"http://127.0.0.1:{os.environ.get('RECEIVER_PORT', '8090')}"
            env.setdefault("NOTIFY_SMS_URL", f"{receiver}/sms")
            env.setdefault("NOTIFY_WECHAT_URL", f"{receiver}/wechat")
            env.setdefault("NOTIFY_HOTLINE_WEBHOOK_URL", f"{receiver}/hotline")
            # The closing SMS's rating link opens notify's own citizen page (notify/citizen_api.py).
            env.setdefault("NOTIFY_RATING_URL", f"http://127.0.0.1:{os.environ.get('NOTIFY_PORT', '8005')}/citizen/rate")
            env.setdefault("NOTIFY_TEST_CLOCK", "true")  # demo only: move notify's clock to the callback day
            env[f"{service.prefix}PORT"] = str(port)
            env.setdefault("PYTHONUNBUFFERED", "1")
            # Sign-in: the services trust the development issuer unless AUTH_* say otherwise;
            # AUTH_MODE stays "headers" unless set (AUTH_MODE=jwt make run to sign in for real).
            issuer_url = f"http://127.0.0.1:{os.environ.get('ISSUER_PORT', '8007')}"
            env.setdefault("AUTH_JWKS_URL", f"{issuer_url}/.well-known/jwks.json")
            env.setdefault("AUTH_ISSUER", issuer_url)
            env.setdefault("ISSUER_KEY_FILE", str(RUN_DIR / "issuer-key.pem"))  # tokens survive a restart
            name = service.name if replica == 0 else f"{service.name}-{replica}"
            log = open(LOG_DIR / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
            proc = subprocess.Popen([sys.executable, "-m", service.module], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            log.close()
            self.children.append((name, proc))
            say(f"  started {name} on port {port} (pid {proc.pid})")

    def wait_ready(self, plan: list[tuple[ServiceDef, int, int]], timeout: float = 120) -> None:
        pending = {f"{s.name}:{port}": port for s, _, port in plan}
        deadline = time.monotonic() + timeout
        while pending:
            for name, proc in self.children:
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited with code {proc.returncode}; see .run/logs/{name}.log")
            for key, port in list(pending.items()):
                if is_ready(port):
                    say(f"  ready: {key}")
                    del pending[key]
            if time.monotonic() > deadline:
                raise SystemExit(f"not ready after {timeout:.0f}s: {', '.join(pending)}; see .run/logs/")
            time.sleep(0.3)

    def seed_demo(self) -> list[str]:
        intake_port = int(os.environ.get("INTAKE_PORT", "8001"))
        tracking = []
        for key, appeal in DEMO_APPEALS:
            try:
                # A grid report is filed signed in as 城中社区's demo grid worker (only grid workers may use that channel).
                signed = demo_sign_in("demo-grid-worker-cz", "grid_worker", "LB-XC-CG-CZ-G01") if appeal["channel"] == "grid" else {}
                answer = http_json(f"http://127.0.0.1:{intake_port}/api/v1/appeals", appeal, headers={"Idempotency-Key": key, **signed})
            except OSError as exc:
                say(f"could not file the demo appeal {appeal['title']!r}: {exc}")
                continue
            tracking.append(f"{answer['tracking_no']}  {appeal['title']}  (case {answer['case_id']})")
        return tracking

    def stop(self) -> None:
        """Stop every service (SIGTERM, then SIGKILL after 20 s), then the broker and
        PostgreSQL — each step even if an earlier one failed."""
        self.stopping = True
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in reversed(self.children):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop in 20 s; killing it")
                proc.kill()
                proc.wait()
        # The services are gone before their broker and database: none loses them mid-shutdown.
        for what, server in (("the broker", self.broker), ("PostgreSQL", self.postgres)):
            if server is None:
                continue
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - the next one must still be stopped
                say(f"could not stop {what}: {exc}")

    def run(self) -> int:
        # SIGTERM anywhere (even during start-up) stops what was started, like Ctrl-C.
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        plan = self.plan()
        self.check_ports(plan)
        try:
            database_url, bootstrap = self.start_infrastructure()
            say("starting services …")
            self.start_services(plan, database_url, bootstrap)
            self.wait_ready(plan)
            demo = self.seed_demo() if self.seed else []
            print_banner(plan, demo)
            return self.supervise()
        except KeyboardInterrupt:
            return 0
        finally:
            self.stopping = True  # (already set if a signal brought us here)
            say("stopping …")
            self.stop()
            again = f" ({self.signals_while_stopping} more signals while stopping, ignored)" if self.signals_while_stopping else ""
            say(f"stopped.{again}")

    def _on_signal(self, signum: int, _frame: object) -> None:
        """The first SIGINT/SIGTERM interrupts whatever runs (start-up or supervise); any later
        one is only counted: raised inside stop(), it would leave the broker and PostgreSQL
        running with no one to stop them. (No printing here: a handler that prints while the
        main code prints gets a "reentrant call" error.)"""
        if self.stopping:
            self.signals_while_stopping += 1
            return
        self.stopping = True
        raise KeyboardInterrupt

    def supervise(self) -> int:
        """Wait for Ctrl-C or SIGTERM; say so if a service dies."""
        reported: set[str] = set()
        while True:
            for name, proc in self.children:
                if proc.poll() is not None and name not in reported:
                    reported.add(name)
                    say(f"!! {name} exited with code {proc.returncode}; see {LOG_DIR}/{name}.log")
            time.sleep(0.5)


def http_json(url: str, body: dict | None = None, headers: dict[str, str] | None = None) -> dict:
    """GET (or POST ``body``) and decode the JSON answer; raises OSError (HTTPError too) on failure."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read() or b"{}")


def demo_sign_in(user: str, role: str, unit: str) -> dict[str, str]:
    """Headers that sign a demo user in: X-Actor-* (AUTH_MODE=headers) and, when the
    development issuer answers, its token (AUTH_MODE=jwt)."""
    headers = {"X-Actor-Id": user, "X-Actor-Role": role, "X-Actor-Unit": unit}
    try:
        token = http_json(f"http://127.0.0.1:{os.environ.get('ISSUER_PORT', '8007')}/token", {"user": user})["access_token"]
    except (OSError, ValueError, KeyError):
        return headers
    return {**headers, "Authorization": f"Bearer {token}"}


def is_ready(port: int) -> bool:
    try:
        http_json(f"http://127.0.0.1:{port}/ready")
        return True
    except (OSError, ValueError):
        return False


def say(message: str) -> None:
    print(f"[jiesu] {message}", flush=True)


def print_banner(plan: list[tuple[ServiceDef, int, int]], demo: list[str]) -> None:
    lines = ["", "接诉即办 is running. Where to look:", ""]
    for service, replica, port in plan:
        label = service.name if replica == 0 else f"{service.name} #{replica}"
        lines.append(f"  {label:<12} http://127.0.0.1:{port}/docs   {service.what if replica == 0 else ''}")
    intake_port = next(port for s, r, port in plan if s.name == "intake" and r == 0)
    lines += [
        "",
        f"  file an appeal: curl -X POST http://127.0.0.1:{intake_port}/api/v1/appeals -H 'Content-Type: application/json' \\",
        "                    -d '{\"title\":\"路灯不亮\",\"description\":\"村口路灯坏了\",\"channel\":\"app\",\"contact\":{\"name\":\"张三\",\"phone\":\"13800000000\"}}'",
        "  health: /health   readiness: /ready   metrics: /metrics   logs: .run/logs/",
    ]
    issuer_port = next((port for s, r, port in plan if s.name == "issuer" and r == 0), None)
    if issuer_port is not None:
        lines += [
            f"  sign in (AUTH_MODE=jwt): curl -s -X POST http://127.0.0.1:{issuer_port}/token -H 'Content-Type: application/json' \\",
            "                    -d '{\"user\":\"demo-dept-clerk\"}'   (demo users: GET /users)",
        ]
    console_port = next((port for s, r, port in plan if s.name == "console" and r == 0), None)
    if console_port is not None:
        lines += ["", f"  command-centre console (指挥中心工作台): http://127.0.0.1:{console_port}/   (sign in as a demo user)"]
    if demo:
        lines += ["", "  demo appeals:"] + [f"    {t}" for t in demo]
    lines += ["", "Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jiesu-run", description=__doc__.splitlines()[0])
    parser.add_argument("--no-seed", action="store_true", help="do not file the demo appeals")
    args = parser.parse_args(argv)
    return Launcher(seed=not args.no_seed).run()


if __name__ == "__main__":
    raise SystemExit(main())
