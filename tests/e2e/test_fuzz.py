"""Property-based fuzzing of every service's OpenAPI (issue #9): schemathesis generates
requests from each service's own schema — valid and invalid bodies, parameters, headers —
and sends them to the service running as its own process. Every answer must be below 500, have
a status the operation documents (each documents its error answers, see shared.openapi) and
fit the schema the service declares for it. The inputs a fuzzer seldom draws — a NUL in a
path, query or form value, dates at the calendar's edges, a number where a date belongs —
are sent as explicit cases (issue #20).

It runs as a signed-in centre supervisor of 忻城县 (who may do the most), so the calls get
past the identity check into the routes; the role and scope rules themselves are tested
per service in ``*/tests/test_access.py``.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import httpx
import pytest

from shared.ports import free_port
from shared.testing import Infra, ServiceProcess, service_env, unique
from tests.test_edge_inputs import OPEN311_CASES, PROBLEM_CASES

pytestmark = pytest.mark.slow

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# Enough examples per operation to hit the edges (empty, huge, wrong types, odd unicode)
# while the whole module stays around a minute per service on 2 cores.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
IDENTITY = {"X-Actor-Id": "fuzz-supervisor", "X-Actor-Role": "centre_supervisor", "X-Actor-Unit": "LB-XC-ZZZX"}


@pytest.fixture(scope="module")
async def directory(infra: Infra, tmp_path_factory):
    port = free_port()
    env = service_env(infra, "DIRECTORY_", topic=unique("lifecycle"), database=unique("fuzz_directory"), port=port,
                      DIRECTORY_ORG_TOPIC=unique("org"))  # fmt: skip
    process = ServiceProcess("services.directory", env, port, tmp_path_factory.mktemp("fuzz") / "directory.log")
    process.start()
    try:
        await process.wait_ready(timeout=120)
        yield process
    finally:
        process.stop()


async def fuzz(url: str, report: Path) -> tuple[int, str]:
    headers = [arg for name, value in IDENTITY.items() for arg in ("-H", f"{name}: {value}")]
    proc = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS), "run", f"{url}/openapi.json",
        "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance",
        "--max-examples", str(EXAMPLES), "--seed", "20261129", "--request-timeout", "20",
        "--exclude-path-regex", r"^/(metrics|ready|health)$", "--generation-database", ":memory:", *headers,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=report.parent,  # schemathesis keeps a folder of its own where it runs: not in the repository
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"},
    )  # fmt: skip
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    report.write_text(text)
    return proc.returncode, text


@pytest.mark.parametrize("service", ["intake", "dispatch", "sla", "scoring", "notify", "directory"])
async def test_no_5xx_and_every_answer_fits_its_schema(platform, directory, service, tmp_path):
    url = directory.url if service == "directory" else platform.url(service)
    code, text = await fuzz(url, tmp_path / f"{service}-schemathesis.txt")
    tail = "\n".join(text.splitlines()[-60:])
    assert code == 0, f"schemathesis found failures in {service}:\n{tail}"
    generated = re.search(r"(\d+) generated", text)
    assert generated and int(generated.group(1)) >= 100, f"schemathesis hardly ran against {service}:\n{tail}"


EXPLICIT = [(service, method, path, values) for service, method, path, values, _ in PROBLEM_CASES] + [
    ("intake", method, path, values) for method, path, values, _ in OPEN311_CASES
]


def operation_of(schema: dict, method: str, path: str) -> dict:
    """The operation a concrete path is answered by (its template's parameters as wildcards)."""
    for template, operations in schema["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)), path.replace("%00", "x")):
            return operations[method.lower()]
    raise AssertionError(f"no operation documents {method} {path}")


@pytest.mark.parametrize(("service", "method", "path", "values"), EXPLICIT)
async def test_edge_inputs_get_a_documented_answer(platform, service, method, path, values):
    """Each explicit case answers below 500 with a status its operation documents, and the
    connection stays open for the next request."""
    url = platform.url(service)
    async with httpx.AsyncClient(headers=IDENTITY, timeout=30) as client:
        schema = (await client.get(f"{url}/openapi.json")).json()
        answer = await (client.get(url + path, params=values) if method == "GET" else client.post(url + path, data=values))
        assert answer.status_code < 500, answer.text
        assert str(answer.status_code) in operation_of(schema, method, path)["responses"], answer.text
        assert (await client.get(f"{url}/health")).status_code == 200
