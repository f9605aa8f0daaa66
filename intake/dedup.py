"""并单: is a new appeal the same matter as an open case nearby?

Same matter = recent (within the window), near (within ``max_distance_m`` when both have
coordinates; otherwise the same township and a stricter text match), and similar text.
Chinese has no spaces between words, so similarity compares character bigrams
(rapidfuzz's token-set ratio over the bigram "tokens"): "村口路灯不亮" and "村口的路灯坏了不亮"
share most bigrams, "路灯不亮" and "鱼塘需要护栏" none.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rapidfuzz import fuzz

from intake.classify import normalise
from shared.geo import haversine_m

NO_COORDINATES_PENALTY = 0.15


@dataclass(frozen=True)
class Candidate:
    case_id: str
    title: str
    description: str
    lat: float | None
    lng: float | None
    township: str | None
    received_at: datetime


@dataclass(frozen=True)
class Match:
    case_id: str
    similarity: float
    distance_m: float | None


def _bigrams(text: str) -> str:
    chars = normalise(text)
    return " ".join(chars[i : i + 2] for i in range(max(1, len(chars) - 1)))


def text_similarity(a: str, b: str) -> float:
    return fuzz.token_set_ratio(_bigrams(a), _bigrams(b)) / 100


def bounding_box(lat: float, lng: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lng, max_lng) around a point: an index-friendly pre-filter."""
    dlat = radius_m / 111_320
    dlng = radius_m / (111_320 * max(0.01, math.cos(math.radians(lat))))
    return lat - dlat, lat + dlat, lng - dlng, lng + dlng


def find_duplicate(
    title: str,
    description: str,
    lat: float | None,
    lng: float | None,
    township: str | None,
    received_at: datetime,
    candidates: Iterable[Candidate],
    *,
    max_distance_m: float = 300.0,
    min_similarity: float = 0.6,
    window: timedelta = timedelta(days=7),
) -> Match | None:
    best: tuple[float, float, datetime, Match] | None = None
    for c in candidates:
        if not (received_at - window <= c.received_at <= received_at):
            continue
        distance = None
        needed = min_similarity
        if None not in (lat, lng, c.lat, c.lng):
            distance = haversine_m(lat, lng, c.lat, c.lng)  # type: ignore[arg-type]
            if distance > max_distance_m:
                continue
        elif township and township == c.township:
            needed = min(1.0, min_similarity + NO_COORDINATES_PENALTY)
        else:
            continue
        similarity = max(
            text_similarity(title, c.title),
            text_similarity(f"{title}{description}", f"{c.title}{c.description}"),
        )
        if similarity < needed:
            continue
        key = (similarity, -(distance if distance is not None else max_distance_m), c.received_at)
        if best is None or key > best[:3]:
            best = (*key, Match(c.case_id, round(similarity, 3), None if distance is None else round(distance, 1)))
    return best[3] if best else None
