"""The risk page's 民情地图: the user's area as a schematic tile map (townships → villages),
each place lit by the findings (未诉先办预警) inside it. Pure functions.

The directory keeps no geometry for every unit, so the map is schematic: tiles, not
outlines, and the page says so. Only what the caller may read is drawn: the places of the
area the user serves (a centre its county or township, a township its own, a village its own
with the township around it), and the findings insight answered the user with (insight
scopes them). A place's score is the sum of the scores of the findings in it or below it; its
``heat`` (0–1) is that score against the hottest place of its kind on the map, so the
brightest township and the brightest village are full colour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

PLACE_LEVELS = ("township", "village", "grid")


def area_of_unit(units: Mapping[str, Mapping[str, Any]], unit: str | None, fallback: str) -> str:
    """The area a user's unit serves (``shared.scope.area_of``'s rule: a centre serves its
    parent, any other unit itself); a user without a known unit gets the console's county."""
    if unit is None or unit not in units:
        return fallback
    found = units[unit]
    return (found.get("parent") or fallback) if found.get("kind") == "centre" else unit


def lineage(units: Mapping[str, Mapping[str, Any]], code: str) -> list[str]:
    """``code`` and every unit above it, nearest first."""
    chain = []
    seen: set[str] = set()
    current: str | None = code
    while current is not None and current in units and current not in seen:
        seen.add(current)
        chain.append(current)
        current = units[current].get("parent")
    return chain


def on_path(units: Mapping[str, Mapping[str, Any]], root: str, code: str) -> bool:
    """Drawn when inside the root, or around it (a village user's own township)."""
    return root in lineage(units, code) or code in lineage(units, root)


def risk_map(units: Iterable[Mapping[str, Any]], findings: Iterable[Mapping[str, Any]], root: str) -> dict[str, Any]:
    by_code = {u["code"]: u for u in units}
    findings = list(findings)
    score: dict[str, float] = {}
    count: dict[str, int] = {}
    ids: dict[str, list[str]] = {}
    for finding in findings:
        if finding.get("level") not in PLACE_LEVELS:
            continue
        for code in lineage(by_code, finding["area"]):
            score[code] = score.get(code, 0.0) + float(finding.get("score") or 0)
            count[code] = count.get(code, 0) + 1
            ids.setdefault(code, []).append(finding["finding_id"])

    def tile(code: str) -> dict[str, Any]:
        return {"code": code, "name": by_code[code]["name"], "score": round(score.get(code, 0.0), 2),
                "findings": count.get(code, 0), "finding_ids": ids.get(code, [])}  # fmt: skip

    townships = []
    for code, unit in by_code.items():
        if unit.get("kind") != "township" or not on_path(by_code, root, code):
            continue
        villages = [tile(v) for v, u in by_code.items() if u.get("kind") == "village" and u.get("parent") == code
                    and on_path(by_code, root, v)]  # fmt: skip
        county = unit.get("parent")
        townships.append({**tile(code), "county_name": by_code[county]["name"] if county in by_code else None,
                          "villages": sorted(villages, key=lambda t: t["code"])})  # fmt: skip
    townships.sort(key=lambda t: t["code"])
    _heat(townships)
    _heat([v for t in townships for v in t["villages"]])
    units_lit = [
        {"code": f["area"], "name": by_code.get(f["area"], {}).get("name", f["area"]), "finding_id": f["finding_id"],
         "score": f.get("score"), "subject_class": f.get("subject_class")}
        for f in findings if f.get("level") == "unit"
    ]  # fmt: skip
    # The name of each finding's place or unit (a grid is not a tile, but its finding names it).
    names = {f["area"]: by_code[f["area"]]["name"] for f in findings if f.get("area") in by_code}
    return {"root": root, "root_name": by_code.get(root, {}).get("name", root), "townships": townships, "units": units_lit,
            "names": names}  # fmt: skip


def _heat(tiles: list[dict[str, Any]]) -> None:
    hottest = max((t["score"] for t in tiles), default=0.0)
    for t in tiles:
        t["heat"] = round(t["score"] / hottest, 2) if hottest > 0 else 0.0


def open_warnings(warnings: Iterable[Mapping[str, Any]], units: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The early warnings (预警信息处置) insight answered the user with that are not closed yet,
    each with its unit's name and the deadline it runs against now: 签收 while open, 处置 after;
    the ones sla has carded (红牌 first), then the soonest due, first."""
    names = {u["code"]: u["name"] for u in units}
    rank = {"red": 0, "yellow": 1, None: 2}
    rows = []
    for w in warnings:
        if w.get("state") == "closed":
            continue
        due = w["acknowledge_due_at"] if w["state"] == "open" else w["handle_due_at"]
        rows.append({**w, "unit_name": names.get(w["unit"], w["unit"]), "due_at": due})
    return sorted(rows, key=lambda r: (rank.get(r.get("card"), 2), r["due_at"], r["warning_id"]))


#: The kinds of unit a task item may go to (insight's ``tasks.placement_problem`` decides; the
#: picker offers only these), in the order the picker lists them.
TASK_UNIT_KINDS = ("township", "village", "grid", "department")


def task_units(units: Iterable[Mapping[str, Any]], root: str) -> list[dict[str, Any]]:
    """The units a centre serving ``root`` may send a task item to (自上而下的任务): the
    townships, villages, grids and departments inside its area, each with its kind."""
    by_code = {u["code"]: u for u in units}
    picked = [
        {"code": code, "name": u["name"], "kind": u["kind"]}
        for code, u in by_code.items()
        if u.get("kind") in TASK_UNIT_KINDS and code != root and root in lineage(by_code, code)
    ]
    return sorted(picked, key=lambda u: (TASK_UNIT_KINDS.index(u["kind"]), u["code"]))


def task_rows(tasks: Iterable[Mapping[str, Any]], units: Iterable[Mapping[str, Any]], root: str) -> list[dict[str, Any]]:
    """The tasks insight answered the user with, each cut to the items the user works or
    oversees: an item whose unit, or whose place (township, village, grid), lies in the user's
    area ``root``. A centre serving the county sees every item; 住建局 its own; 城关镇 its villages'.
    Each task carries how many of its items (all of them, not only the user's) are closed."""
    by_code = {u["code"]: u for u in units}

    def mine(item: Mapping[str, Any]) -> bool:
        places = [item.get("unit"), item.get("grid"), item.get("village"), item.get("township")]
        return any(p is not None and root in lineage(by_code, p) for p in places)

    rows = []
    for task in tasks:
        items = [{**i, "unit_name": i.get("unit_name") or by_code.get(i["unit"], {}).get("name", i["unit"])}
                 for i in task.get("items", []) if mine(i)]  # fmt: skip
        closed = sum(1 for i in task.get("items", []) if i.get("state") == "closed")
        rows.append({**task, "items": items, "closed": closed, "total": len(task.get("items", []))})
    return rows
