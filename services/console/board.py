"""The live board: what the centre sees at a glance, assembled from the services' public APIs.

``build_board`` and its helpers are pure (tested without servers); ``collect_board`` asks the
services, as the signed-in user, for what it needs and hands the answers to ``build_board``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.console.session import Session
from services.console.upstream import Fetched, Upstreams

BEIJING = ZoneInfo("Asia/Shanghai")
# Statuses (shared/lifecycle.py) grouped as the board counts them.
CLOSED = frozenset({"verified", "closed", "rated"})
DROPPED = frozenset({"rejected", "merged"})  # explained or merged: never "in progress"
CARD_LIMIT = 30


def day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s day in Beijing, as UTC: "today" for a county centre."""
    local = now.astimezone(BEIJING)
    return datetime.combine(local.date(), time(0), BEIJING).astimezone(UTC)


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_open(status: str) -> bool:
    return status not in CLOSED and status not in DROPPED


def summarise_cases(cases: list[dict[str, Any]], today: datetime) -> dict[str, Any]:
    """Counts of the county's cases: received today, in progress, closed — in total and per township."""
    totals = Counter()
    townships: dict[str, Counter] = defaultdict(Counter)
    for case in cases:
        status = case.get("status") or "received"
        created = parse_time(case.get("created_at"))
        keys = ["received_today"] if created and created >= today else []
        if status in CLOSED:
            keys.append("closed")
        elif is_open(status):
            keys.append("in_progress")
        for key in keys:
            totals[key] += 1
            townships[case.get("township") or "unknown"][key] += 1
    return {"totals": dict(totals), "townships": {k: dict(v) for k, v in townships.items()}}


def clock_cards(clocks: list[dict[str, Any]], cases: dict[str, dict[str, Any]], colour: str) -> list[dict[str, Any]]:
    """One card per case (its most urgent clock) for the yellow or red column."""
    best: dict[str, dict[str, Any]] = {}
    for clock in clocks:
        if clock.get("state") in ("stopped",):
            continue
        seen = best.get(clock["case_id"])
        if seen is None or clock["remaining_seconds"] < seen["remaining_seconds"]:
            best[clock["case_id"]] = clock
    cards = []
    for case_id, clock in sorted(best.items(), key=lambda item: item[1]["remaining_seconds"]):
        case = cases.get(case_id, {})
        cards.append({
            "colour": colour, "case_id": case_id, "tracking_no": case.get("tracking_no"), "title": case.get("title"),
            "township": case.get("township"), "unit": clock.get("unit"), "clock": clock.get("name") or clock.get("kind"),
            "due_at": clock.get("due_at"), "remaining": clock.get("remaining_text"),
        })  # fmt: skip
    return cards[:CARD_LIMIT]


def build_board(
    *, now: datetime, county: str, units: list[dict[str, Any]], cases: list[dict[str, Any]] | None,
    sla_board: dict[str, Any] | None, dispatch_board: dict[str, Any] | None,
    unit_counts: dict[str, dict[str, int]], red: list[dict[str, Any]], yellow: list[dict[str, Any]],
    sources: dict[str, str],
) -> dict[str, Any]:  # fmt: skip
    """The board snapshot the page draws (and the SSE stream pushes when it changes)."""
    names = {u["code"]: u.get("short_name") or u["name"] for u in units}
    summary = summarise_cases(cases or [], day_start(now))
    by_unit = {row["unit"]: row for row in (sla_board or {}).get("units", [])}
    index = {c["case_id"]: c for c in cases or []}

    def cards(clocks: list[dict[str, Any]], colour: str) -> list[dict[str, Any]]:
        out = clock_cards(clocks, index, colour)
        for card in out:
            card["unit_name"] = names.get(card["unit"] or "", card["unit"])
            card["township_name"] = names.get(card["township"] or "", card["township"])
        return out

    townships = []
    for unit in units:
        if unit.get("kind") == "township" and unit.get("parent") == county:
            counts = summary["townships"].get(unit["code"], {})
            sla = by_unit.get(unit["code"], {})
            townships.append({
                "code": unit["code"], "name": unit["name"], "received_today": counts.get("received_today", 0),
                "in_progress": counts.get("in_progress", 0), "closed": counts.get("closed", 0),
                "yellow": sla.get("yellow", 0), "red": sla.get("red", 0),
            })  # fmt: skip
    departments = []
    for unit in units:
        if unit["code"] in unit_counts and unit.get("kind") != "township":
            counts = unit_counts[unit["code"]]
            sla = by_unit.get(unit["code"], {})
            departments.append({
                "code": unit["code"], "name": names[unit["code"]], **{k: counts.get(k, 0) for k in
                ("to_sign", "in_progress", "due_soon", "overdue", "returned", "resolved")},
                "yellow": sla.get("yellow", 0), "red": sla.get("red", 0),
            })  # fmt: skip
    sla_totals = (sla_board or {}).get("totals", {})
    waiting = [
        {**c, "township_name": names.get(c.get("township") or "", c.get("township"))}
        for c in (dispatch_board or {}).get("unassigned", [])
    ]
    returned = (dispatch_board or {}).get("returned", [])
    recent = sorted(cases or [], key=lambda c: c.get("created_at") or "", reverse=True)[:12]
    return {
        "as_of": now.isoformat(),
        "county": county,
        "county_name": names.get(county, county),
        "totals": {
            "received_today": summary["totals"].get("received_today", 0),
            "in_progress": summary["totals"].get("in_progress", 0),
            "due_soon": sla_totals.get("yellow", 0),
            "overdue": sla_totals.get("red", 0),
            "closed": summary["totals"].get("closed", 0),
            "waiting_dispatch": len(waiting),
            "returned": len(returned),
        },
        "townships": townships,
        "departments": departments,
        "cards": {"red": cards(red, "red"), "yellow": cards(yellow, "yellow"), "waiting": waiting[:CARD_LIMIT],
                  "returned": returned[:CARD_LIMIT]},  # fmt: skip
        "recent": [{**c, "township_name": names.get(c.get("township") or "", c.get("township"))} for c in recent],
        "sources": sources,
    }


def digest(snapshot: dict[str, Any]) -> str:
    """What the board shows, without its time stamp: equal digests need no push."""
    body = {k: v for k, v in snapshot.items() if k != "as_of"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------- asking the services


class OrgCache:
    """The org directory's units, fetched at most once a minute (they change rarely)."""

    def __init__(self, upstreams: Upstreams, ttl_seconds: float = 60) -> None:
        self.upstreams = upstreams
        self.ttl = ttl_seconds
        self._units: list[dict[str, Any]] = []
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def units(self) -> tuple[list[dict[str, Any]], str | None]:
        loop = asyncio.get_running_loop()
        async with self._lock:
            if self._units and loop.time() - self._at < self.ttl:
                return self._units, None
            got = await self.upstreams.get_json("directory", "units", None)
            if got.ok:
                self._units, self._at = list(got.body.get("items", [])), loop.time()
                return self._units, None
            return self._units, got.error


async def all_cases(upstreams: Upstreams, session: Session, *, since: datetime, max_cases: int) -> Fetched:
    """Every case filed since ``since`` the user may see (intake pages them)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(items) < max_cases:
        params: dict[str, Any] = {"since": since.isoformat(), "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = await upstreams.get_json("intake", "cases", session, params)
        if not page.ok:
            return page
        items.extend(page.body.get("items", []))
        cursor = page.body.get("next_cursor")
        if not cursor:
            break
    return Fetched("intake", 200, items[:max_cases])


def county_units(units: list[dict[str, Any]], county: str, kind: str) -> list[str]:
    return [u["code"] for u in units if u.get("kind") == kind and u.get("parent") == county]


async def collect_board(upstreams: Upstreams, org: OrgCache, session: Session, *, county: str, window_days: int,
                        max_cases: int, now: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    now = now or datetime.now(UTC)
    units, org_error = await org.units()
    sources: dict[str, str] = {}
    if org_error:
        sources["directory"] = org_error
    since = day_start(now) - timedelta(days=window_days - 1)
    # Centre staff see every department of the county; anyone else their own unit.
    queue_units = county_units(units, county, "department") if session.is_centre else [session.unit] if session.unit else []
    jobs = [
        all_cases(upstreams, session, since=since, max_cases=max_cases),
        upstreams.get_json("sla", "board", session),
        upstreams.get_json("dispatch", "board", session) if session.is_centre else _nothing("dispatch"),
        *(upstreams.get_json("dispatch", f"units/{code}/orders", session, {"queue": "to_sign", "limit": 1}) for code in queue_units),
    ]
    cases, sla, dispatch, *queues = await asyncio.gather(*jobs)
    for name, got in (("intake", cases), ("sla", sla), ("dispatch", dispatch)):
        if got.error:
            sources[name] = got.error
    unit_counts = {code: got.body["counts"] for code, got in zip(queue_units, queues, strict=True) if got.ok}
    # Yellow and red cards: the clocks behind the SLA board's counts, for the units that have any.
    hot = [row for row in (sla.body or {}).get("units", []) if row.get("yellow") or row.get("red")] if sla.ok else []
    clock_jobs = [
        upstreams.get_json("sla", f"units/{row['unit']}/clocks", session, {"view": view, "limit": 50})
        for row in hot for view in ("overdue", "due_soon") if row.get("red" if view == "overdue" else "yellow")
    ]
    red: list[dict[str, Any]] = []
    yellow: list[dict[str, Any]] = []
    for got in await asyncio.gather(*clock_jobs):
        if got.ok:
            (red if got.body.get("view") == "overdue" else yellow).extend(got.body.get("items", []))
    return build_board(
        now=now, county=county, units=units, cases=cases.body if cases.ok else None,
        sla_board=sla.body if sla.ok else None, dispatch_board=dispatch.body if dispatch.ok else None,
        unit_counts=unit_counts, red=red, yellow=yellow, sources=sources,
    )


async def _nothing(service: str) -> Fetched:
    return Fetched(service, 204, None)
