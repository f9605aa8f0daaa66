"""The map page's data: the county's township and village outlines and its open cases as points.

Pure functions. A case without coordinates is drawn at a spot inside its township chosen
from its id (stable between refreshes) and flagged ``approximate``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from services.console.board import is_open


def bbox(polygon: list[list[float]]) -> tuple[float, float, float, float]:
    """(min lat, min lng, max lat, max lng)."""
    lats = [p[0] for p in polygon]
    lngs = [p[1] for p in polygon]
    return min(lats), min(lngs), max(lats), max(lngs)


def spot_in(polygon: list[list[float]], key: str) -> tuple[float, float]:
    """A point inside the middle 60 % of the polygon's box, the same for the same key."""
    south, west, north, east = bbox(polygon)
    digest = hashlib.sha256(key.encode()).digest()
    u, v = digest[0] / 255, digest[1] / 255
    return south + (0.2 + 0.6 * u) * (north - south), west + (0.2 + 0.6 * v) * (east - west)


def in_county(unit: dict[str, Any], county: str, parents: dict[str, str | None]) -> bool:
    code: str | None = unit["code"]
    while code is not None:
        if code == county:
            return True
        code = parents.get(code)
    return False


def map_data(units: list[dict[str, Any]], cases: list[dict[str, Any]], county: str) -> dict[str, Any]:
    parents = {u["code"]: u.get("parent") for u in units}
    names = {u["code"]: u["name"] for u in units}
    areas = [
        {"code": u["code"], "name": u["name"], "kind": u["kind"], "polygon": u["polygon"]}
        for u in units
        if u.get("polygon") and u.get("kind") in ("township", "village") and in_county(u, county, parents)
    ]
    polygons = {a["code"]: a["polygon"] for a in areas}
    points = []
    for case in cases:
        if not is_open(case.get("status") or "received"):
            continue
        lat, lng, approximate = case.get("lat"), case.get("lng"), False
        if lat is None or lng is None:
            area = case.get("village") if case.get("village") in polygons else case.get("township")
            if area not in polygons:
                continue  # nowhere to draw it; the board still counts it
            (lat, lng), approximate = spot_in(polygons[area], case["case_id"]), True
        points.append({
            "case_id": case["case_id"], "tracking_no": case.get("tracking_no"), "title": case.get("title"),
            "status": case.get("status"), "category": case.get("category"), "subject_class": case.get("subject_class"),
            "urgency": case.get("urgency"), "township": case.get("township"),
            "township_name": names.get(case.get("township") or "", case.get("township")),
            "lat": lat, "lng": lng, "approximate": approximate,
        })  # fmt: skip
    corners = [bbox(a["polygon"]) for a in areas if a["kind"] == "township"]
    corners += [(p["lat"], p["lng"], p["lat"], p["lng"]) for p in points if not p["approximate"]]
    extent = None
    if corners:
        extent = {"south": min(c[0] for c in corners), "west": min(c[1] for c in corners),
                  "north": max(c[2] for c in corners), "east": max(c[3] for c in corners)}  # fmt: skip
    return {"county": county, "county_name": names.get(county, county), "extent": extent, "areas": areas, "points": points}
