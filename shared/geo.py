"""Plain geometry on latitude/longitude: distances, grid polygons, bounding boxes. Pure.

Points are ``(lat, lng)`` pairs in decimal degrees (WGS-84 as the phone reports them;
GCJ-02 map coordinates are off by a few hundred metres and must be converted before
they get here). A ring is a sequence of points, open (the closing edge is implied) or
closed (first point repeated at the end) — both give the same answers.

Polygon tests treat lat/lng as a flat plane. That is exact enough for grids, villages
and townships a few kilometres across; it is not meant for rings that cross the
antimeridian or a pole, which no county in China does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
Point = tuple[float, float]  # (lat, lng)
BBox = tuple[float, float, float, float]  # (min_lat, max_lat, min_lng, max_lng)

_EPS = 1e-12  # degrees² for "on the edge"; far below a millimetre


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres between two points (spherical Earth, error < 0.5%)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def point_in_polygon(lat: float, lng: float, ring: Sequence[Point]) -> bool:
    """Is the point inside the ring? Ray casting (even-odd rule) along the longitude axis.

    A point **on the boundary counts as inside** — an edge or a vertex — so a report on
    the line between two grids still lands in one of them (the caller decides which; the
    directory takes the first in file order). Works for concave rings; a ring with fewer
    than 3 points contains nothing.
    """
    n = len(ring)
    if n < 3:
        return False
    inside = False
    for i in range(n):
        (y1, x1), (y2, x2) = ring[i], ring[(i + 1) % n]
        if _on_segment(lat, lng, y1, x1, y2, x2):
            return True
        if (y1 > lat) != (y2 > lat):  # the edge straddles the point's latitude (never horizontal)
            x_cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
            if lng < x_cross:
                inside = not inside
    return inside


def _on_segment(lat: float, lng: float, y1: float, x1: float, y2: float, x2: float) -> bool:
    cross = (lng - x1) * (y2 - y1) - (lat - y1) * (x2 - x1)
    if abs(cross) > _EPS:
        return False
    return (
        min(x1, x2) - _EPS <= lng <= max(x1, x2) + _EPS
        and min(y1, y2) - _EPS <= lat <= max(y1, y2) + _EPS
    )


def bbox(ring: Sequence[Point]) -> BBox:
    """The ring's bounding box as ``(min_lat, max_lat, min_lng, max_lng)``."""
    if not ring:
        raise ValueError("the bounding box of an empty ring is undefined")
    lats, lngs = [p[0] for p in ring], [p[1] for p in ring]
    return min(lats), max(lats), min(lngs), max(lngs)


def in_bbox(lat: float, lng: float, box: BBox) -> bool:
    """Is the point inside the box (edges included)? The cheap test before ``point_in_polygon``."""
    min_lat, max_lat, min_lng, max_lng = box
    return min_lat <= lat <= max_lat and min_lng <= lng <= max_lng
