"""Plain geometry on latitude/longitude: distances and grid polygons."""

from __future__ import annotations

import math
from collections.abc import Sequence

EARTH_RADIUS_M = 6_371_008.8
Point = tuple[float, float]  # (lat, lng)


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def point_in_polygon(lat: float, lng: float, ring: Sequence[Point]) -> bool:
    """Ray casting; a point on the boundary counts as inside (a report on the line between
    two grids still lands in one of them)."""
    inside = False
    n = len(ring)
    for i in range(n):
        (y1, x1), (y2, x2) = ring[i], ring[(i + 1) % n]
        if _on_segment(lat, lng, y1, x1, y2, x2):
            return True
        if (y1 > lat) != (y2 > lat):
            x_cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lng < x_cross:
                inside = not inside
    return inside


def _on_segment(lat: float, lng: float, y1: float, x1: float, y2: float, x2: float) -> bool:
    cross = (lng - x1) * (y2 - y1) - (lat - y1) * (x2 - x1)
    if abs(cross) > 1e-12:
        return False
    return min(x1, x2) - 1e-12 <= lng <= max(x1, x2) + 1e-12 and min(y1, y2) - 1e-12 <= lat <= max(y1, y2) + 1e-12


def bbox(ring: Sequence[Point]) -> tuple[float, float, float, float]:
    lats, lngs = [p[0] for p in ring], [p[1] for p in ring]
    return min(lats), max(lats), min(lngs), max(lngs)
