"""定位: where is this appeal — grid, village, township, county.

Coordinates win (the grid polygon that contains the point); otherwise the address text
is matched against unit names, the longest name first ("城东社区" before "城关镇"). What
goes into events is the address cut to the street: no house, building or room numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from shared.geo import point_in_polygon
from shared.orgdata import OrgDirectory, Unit

# A number followed by 号/栋/幢/单元/室/户/弄/楼/门, and everything after it, is too precise.
_HOUSE_NUMBER = re.compile(r"[0-9０-９一二三四五六七八九十百]+\s*(号|栋|幢|单元|室|户|弄|楼|门).*$")

CONFIDENCE = {"grid": 1.0, "village": 0.7, "township": 0.5, "county": 0.3}


@dataclass(frozen=True)
class Located:
    county: str | None = None
    township: str | None = None
    village: str | None = None
    grid: str | None = None
    street: str | None = None
    confidence: float = 0.0
    method: Literal["point", "address", "none"] = "none"


def street_of(address: str | None) -> str | None:
    if not address:
        return None
    cut = _HOUSE_NUMBER.sub("", address.strip()).strip(" ,，")
    return cut or None


def locate(org: OrgDirectory, *, lat: float | None, lng: float | None, address: str | None) -> Located:
    street = street_of(address)
    if lat is not None and lng is not None:
        for unit in org.units:
            if unit.kind == "grid" and unit.polygon and point_in_polygon(lat, lng, unit.polygon):
                return _from_unit(org, unit, street, "point")
    if address:
        text = address.replace(" ", "")
        named = sorted(
            (u for u in org.units if u.kind in ("grid", "village", "township", "county") and u.name in text),
            key=lambda u: len(u.name),
            reverse=True,
        )
        # Prefer the most specific kind among the names found; among equals the longest name.
        rank = {"grid": 0, "village": 1, "township": 2, "county": 3}
        if named:
            best = min(named, key=lambda u: (rank[u.kind], -len(u.name)))
            return _from_unit(org, best, street, "address")
    return Located(street=street)


def _from_unit(org: OrgDirectory, unit: Unit, street: str | None, method: Literal["point", "address"]) -> Located:
    chain = {u.kind: u.code for u in [unit, *org.ancestors(unit.code)]}
    return Located(
        county=chain.get("county"),
        township=chain.get("township"),
        village=chain.get("village"),
        grid=chain.get("grid"),
        street=street,
        confidence=CONFIDENCE[unit.kind] if method == "address" else 1.0,
        method=method,
    )
