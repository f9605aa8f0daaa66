"""定位: where is this appeal — grid, village, township, county. Pure.

1. **Coordinates** (the app's GPS, a grid worker's report): the grid whose polygon holds
   the point, then its village, township and county; confidence 1.0. A point on the line
   between two grids goes to the first grid in the directory's order.
2. **Address text**, when no grid holds the point: the place names found in the text.
   Longest match wins (a name inside a longer matched name, such as 城中社区 inside
   城中社区第一网格, is not counted again), and the most specific unit whose ancestors agree
   with the other names found is taken — a village implies its township and county; a
   county name alone gives the county only. Confidence by level: grid 0.8, village 0.7,
   township 0.5, county 0.3. When the names disagree (城中社区 and 城西社区 both named; a
   village under another county than the one named; a name that two counties share), the
   answer is the level they agree on, and nothing when that is only the city.
3. A point outside every grid but inside a village or township polygon gives that level
   (method ``point``, the level's confidence) unless the address says more.
4. **Nothing**: method ``none``, confidence 0 — the caller sends the appeal to manual triage.

``street`` is what may travel in events (PIPL): the address cut before the house number —
digits followed by 号/栋/幢/座/单元/室/户/楼/层/弄 and everything after them, building
letters (A栋), dash-joined numbers (3-2-501), Chinese-numeral house numbers after a road
(西宁街十二号). Village groups (5组) and landmarks without numbers stay.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from shared.orgdata import OrgDirectory, Unit

Method = Literal["point", "address", "window", "none"]

#: Confidence of a location by how it was found and to which level.
POINT_IN_GRID = 1.0
CONFIDENCE: dict[str, float] = {"grid": 0.8, "village": 0.7, "township": 0.5, "county": 0.3}
_LEVELS = ("county", "township", "village", "grid")  # coarse → fine

_SUFFIX = r"(?:号院|号楼|号|栋|幢|座|单元|室|户|楼|层|弄)"
_HOUSE_NUMBER = re.compile(
    r"(?:"
    rf"[0-9]+(?:[-－—][0-9]+)*\s*{_SUFFIX}"  # 12号, 3栋, 2单元, 501室, 12-3号
    r"|[0-9]+(?:[-－—][0-9]+)+"  # 3-2-501
    r"|(?<![A-Za-z])[A-Z]\s*(?:栋|座|幢)"  # A栋, B座
    r"|(?<=[路街巷道弄里])[零〇一二三四五六七八九十百千]+号"  # 西宁街十二号
    r").*$",
    re.DOTALL,
)
_TRAILING = " \t\r\n,，.。;；:：、-－—(（"


@dataclass(frozen=True)
class Located:
    township: str | None = None
    village: str | None = None
    grid: str | None = None
    county: str | None = None
    street: str | None = None
    confidence: float = 0.0
    method: Method = "none"


def _normalise(text: str) -> str:
    """Full-width digits and letters to ASCII (NFKC); whitespace removed."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


@lru_cache(maxsize=4096)
def _normalised_name(name: str) -> str:
    """A unit's name as addresses are compared with it: the same few hundred names on every
    appeal, so normalised once each."""
    return _normalise(name)


_INDEX: list = [None, {}]  # [the directory indexed, its index]: one directory is current at a time


def _names_by_first_character(org: OrgDirectory) -> dict[str, list[tuple[int, str, Unit]]]:
    """The units an address may name, by the first character of their normalised name: an
    address is matched against the names starting with one of its characters rather than
    against every unit of the directory (thousands of grids in a county). Built once per
    directory version."""
    if _INDEX[0] is not org:
        index: dict[str, list[tuple[int, str, Unit]]] = {}
        for order, unit in enumerate(org.units):
            if unit.kind in _LEVELS and (name := _normalised_name(unit.name)):
                index.setdefault(name[0], []).append((order, name, unit))
        _INDEX[:] = [org, index]
    return _INDEX[1]


def street_of(address: str | None) -> str | None:
    """The address cut to the street: no house, building, unit or room number (PIPL)."""
    if not address:
        return None
    text = unicodedata.normalize("NFKC", address).strip()
    cut = _HOUSE_NUMBER.sub("", text).rstrip(_TRAILING).strip()
    return cut or None


def locate(org: OrgDirectory, *, lat: float | None, lng: float | None, address: str | None) -> Located:
    street = street_of(address)
    by_point: Located | None = None
    if lat is not None and lng is not None:
        for kind in ("grid", "village", "township"):
            found = org.containing(lat, lng, kind)
            if found:
                confidence = POINT_IN_GRID if kind == "grid" else CONFIDENCE[kind]
                by_point = _from_unit(org, found[0], street, "point", confidence)
                break
        if by_point is not None and by_point.grid is not None:
            return by_point  # coordinates win over whatever the address says
    by_address = None
    if address:
        unit = match_address(org, address)
        if unit is not None:
            by_address = _from_unit(org, unit, street, "address", CONFIDENCE[unit.kind])
    candidates = [c for c in (by_point, by_address) if c is not None]
    if not candidates:
        return Located(street=street)
    return max(candidates, key=lambda c: c.confidence)  # a tie keeps the point


def match_address(org: OrgDirectory, address: str) -> Unit | None:
    """The most specific place the address names consistently, or None (see the module doc)."""
    text = _normalise(address)
    found: list[tuple[int, int, int, Unit]] = []  # (unit's place in the directory, start, end, unit)
    by_first = _names_by_first_character(org)
    for first in set(text):
        for order, name, unit in by_first.get(first, ()):
            start = text.find(name)
            while start != -1:
                found.append((order, start, start + len(name), unit))
                start = text.find(name, start + 1)
    found.sort(key=lambda hit: (hit[0], hit[1]))  # the directory's order, as a scan of every unit gives
    hits = [(start, end, unit) for _, start, end, unit in found]
    # Longest match wins: drop a hit that lies inside a longer one.
    kept = [
        h for h in hits
        if not any(o[0] <= h[0] and h[1] <= o[1] and (o[1] - o[0]) > (h[1] - h[0]) for o in hits)
    ]  # fmt: skip
    named = {h[2].code: h[2] for h in kept}
    if not named:
        return None

    # Each candidate explains the names on its own chain (itself and its ancestors).
    chains = {code: {code, *(a.code for a in org.ancestors(code))} for code in named}
    support = {code: len(chains[code] & named.keys()) for code in named}
    best = max(support.values())
    top = [code for code in named if support[code] == best]
    # Among the best-supported, the deepest ones; nested candidates are impossible here
    # (the deeper one's chain would contain the other and have more support).
    if len(top) == 1:
        return named[top[0]]
    common = set.intersection(*(chains[c] for c in top))
    if not common:
        return None
    # The lowest common ancestor: the one of the common units with the longest chain.
    lowest = max(common, key=lambda c: len(org.ancestors(c)))
    unit = org.unit(lowest)
    return unit if unit.kind in _LEVELS else None


def at_window(org: OrgDirectory, place: Located, *, channel: str, filer_unit: str | None) -> Located:
    """Where a 五事 window appeal is when its address does not place it in a village: the
    receiving village (the citizen walked into that village's window, so the village holds it
    first — claims it or reports it up — like any of its matters). An appeal the address puts
    in a village, or in another township or county, stays where the address puts it; any other
    channel, or a filer not of a village, is left as located."""
    if channel != "window" or place.village is not None or filer_unit is None or not org.has_unit(filer_unit):
        return place
    unit = org.unit(filer_unit)
    if unit.kind != "village":
        return place
    here = _from_unit(org, unit, place.street, "window", CONFIDENCE["village"])
    if place.township not in (None, here.township) or place.county not in (None, here.county):
        return place  # the address names another township or county: the matter is theirs
    return here


def _from_unit(org: OrgDirectory, unit: Unit, street: str | None, method: Method, confidence: float) -> Located:
    chain = {u.kind: u.code for u in [unit, *org.ancestors(unit.code)]}
    return Located(
        township=chain.get("township"),
        village=chain.get("village"),
        grid=chain.get("grid"),
        county=chain.get("county"),
        street=street,
        confidence=confidence,
        method=method,
    )
