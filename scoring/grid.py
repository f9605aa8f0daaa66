"""Grid workers' monthly auto-score (网格员月度自动评分) — pure rules.

Points per activity, capped per activity and month, so that no single kind of busywork
(a thousand logins) buys a top rank. Points and caps are versioned data (table
``grid_point_versions``); the defaults below are version 2 (scoring_0007), which added the
grid duties of issue #23: household visits (入户走访), mailbox openings (定时开箱取信) and
proxy services (帮办代办). Version 1 had none of them, so they earn nothing under it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

KINDS = ("login", "info_update", "report", "patrol", "event_handled", "solved_on_spot", "visit", "mailbox_opened", "proxy_service")
DEFAULT_POINTS = {"login": 1, "info_update": 2, "report": 5, "patrol": 3, "event_handled": 5, "solved_on_spot": 8,
                  "visit": 4, "mailbox_opened": 2, "proxy_service": 6}  # fmt: skip
# visit: 4 points, capped at 20 visits a month (5+ flagged households visited monthly, some
# more than once); mailbox: twice a week is ~9 openings; proxy services: 15 a month.
DEFAULT_CAPS = {"login": 22, "info_update": 40, "report": 100, "patrol": 90, "event_handled": 100, "solved_on_spot": 80,
                "visit": 80, "mailbox_opened": 18, "proxy_service": 90}  # fmt: skip


@dataclass(frozen=True)
class GridPoints:
    version: int = 2
    points: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_POINTS))
    caps: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CAPS))

    def __post_init__(self) -> None:
        for name, table in (("points", self.points), ("caps", self.caps)):
            unknown = set(table) - set(KINDS)
            if unknown:
                raise ValueError(f"{name}: unknown activity {sorted(unknown)}; known: {', '.join(KINDS)}")
            if any((not isinstance(v, int)) or v < 0 for v in table.values()):
                raise ValueError(f"{name}: every value must be a whole number ≥ 0")


def grid_score(counts: Mapping[str, int], config: GridPoints) -> tuple[int, dict[str, int]]:
    """(total, points per kind): count × points, each kind capped; a kind with no cap is not capped."""
    parts: dict[str, int] = {}
    for kind, count in counts.items():
        earned = count * config.points.get(kind, 0)
        cap = config.caps.get(kind)
        parts[kind] = min(earned, cap) if cap is not None else earned
    return sum(parts.values()), parts


@dataclass
class WorkerScore:
    worker_id: str
    township: str | None
    county: str | None
    counts: dict[str, int]
    points: dict[str, int]
    total: int
    rank_in_township: int | None = None
    rank_in_county: int | None = None


def _competition_rank(items: list[WorkerScore], attr: str) -> None:
    ordered = sorted(items, key=lambda w: (-w.total, w.worker_id))
    for position, worker in enumerate(ordered, 1):
        same = position > 1 and ordered[position - 2].total == worker.total
        setattr(worker, attr, getattr(ordered[position - 2], attr) if same else position)


def rank_workers(
    activity: Iterable[tuple[str, str | None, str | None, str, int]], config: GridPoints
) -> list[WorkerScore]:
    """From (worker, township, county, kind, count) rows of one month: each worker's score,
    ranked inside the township and the county (equal totals share a rank)."""
    tally: dict[str, dict] = {}
    for worker_id, township, county, kind, count in activity:
        entry = tally.setdefault(worker_id, {"township": township, "county": county, "counts": {}})
        entry["township"] = entry["township"] or township
        entry["county"] = entry["county"] or county
        entry["counts"][kind] = entry["counts"].get(kind, 0) + count
    workers = []
    for worker_id, entry in tally.items():
        total, points = grid_score(entry["counts"], config)
        workers.append(WorkerScore(worker_id, entry["township"], entry["county"], entry["counts"], points, total))
    for key, attr in (("township", "rank_in_township"), ("county", "rank_in_county")):
        groups: dict[str | None, list[WorkerScore]] = {}
        for w in workers:
            groups.setdefault(getattr(w, key), []).append(w)
        for group in groups.values():
            _competition_rank(group, attr)
    return sorted(workers, key=lambda w: (w.county or "", w.rank_in_county or 0, w.worker_id))
