"""并单: is a new appeal the same matter as an open case nearby?

Same matter = recent, near and said alike:

- **recent**: the open case was received within ``window`` before the new appeal
  (a case from 8 days ago with the same words is a recurrence, not a duplicate);
- **near**: when both have coordinates, within ``max_distance_m`` of each other (the
  township does not matter then — a lamp on a border road is one lamp). When either lacks
  coordinates, only a case in the *same township* counts, and its text must be
  ``NO_COORDINATES_STRICTER`` more similar, since the distance cannot vouch for it;
- **alike**: :func:`text_similarity` of the titles, or of title + description, reaches
  ``min_similarity``.

Merging is the costly mistake (a merged appeal gets no dispatch of its own), so every rule
errs towards *not* merging. Among several matches the most similar wins, then the nearest
(a known distance beats an unknown one), then the newest, then the smallest case id so the
answer never depends on the order the database returned the rows in.

Similarity choice
    Chinese is written without spaces, so rapidfuzz's ``token_*`` ratios would see a whole
    sentence as one token. We compare characters: ``fuzz.ratio`` is the normalised Indel
    similarity, ``2·LCS / (len a + len b)`` — the longest common *subsequence* of
    characters, so inserted particles and extra words ("村口**的**路灯**坏了**不亮") cost
    little while order still matters: "村口路灯不亮" vs "村口的路灯坏了不亮" is 0.80,
    "路灯不亮" vs "鱼塘需要护栏" is 0. Rejected alternatives: ``partial_ratio`` scores 1.0
    whenever a short text sits inside a long one ("路灯" would match every lamp complaint);
    Dice/Jaccard on character bigrams punish each inserted character twice (0.46 for the
    lamp pair above). Before comparing, punctuation is dropped and hotline boilerplate
    (反映, 投诉, 希望尽快解决…) removed: two different matters both titled "反映问题" must
    not look identical. Text left empty compares as 0, never as a perfect match.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from rapidfuzz import fuzz, process

from intake.classify import normalise
from shared.geo import EARTH_RADIUS_M, haversine_m

__all__ = [
    "BOILERPLATE",
    "NO_COORDINATES_STRICTER",
    "Candidate",
    "Match",
    "bounding_box",
    "find_duplicate",
    "haversine_m",  # one Earth for the whole system: shared.geo's, re-exported here
    "text_similarity",
]

#: Extra similarity required when a distance cannot be measured (same township only).
NO_COORDINATES_STRICTER = 0.15

#: Words every appeal may carry; they say nothing about *which* matter it is. Longest first.
BOILERPLATE: tuple[str, ...] = (
    "希望有关部门尽快解决", "希望有关部门", "请有关部门", "希望尽快解决", "尽快处理", "尽快解决",
    "有关部门", "关于", "反映", "投诉", "举报", "问题", "情况",
)  # fmt: skip


class Candidate(NamedTuple):
    """An open case already known, as the repository hands it over.

    A named tuple, not a dataclass: every appeal builds up to 200 of them, and a frozen
    dataclass took longer to build than the comparison itself. ``find_duplicate`` checks
    that ``received_at`` is timezone-aware."""

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
    similarity: float  # 0..1 text similarity
    distance_m: float | None  # None when either side had no coordinates


def _require_aware(moment: datetime, what: str) -> None:
    """Naive times cannot be compared with the aware ones from the database; fail loudly, not subtly."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")


# Each appeal is compared with up to the ~200 newest open cases near it, and a busy street's
# newest cases are the same for the next appeals too: remembering their comparable texts
# keeps a burst of appeals in one place from normalising the same texts over and over.
@lru_cache(maxsize=16_384)
def _comparable(text: str) -> str:
    """Normalised characters without punctuation or boilerplate: what says *which* matter."""
    chars = "".join(ch for ch in normalise(text) if ch.isalnum())
    for phrase in BOILERPLATE:
        chars = chars.replace(phrase, "")
    return chars


@lru_cache(maxsize=16_384)
def _comparable_text(title: str, description: str) -> str:
    """``_comparable`` of title and description together, remembered by the two parts: a
    candidate's strings are the same objects appeal after appeal (intake keeps them), so
    this look-up hashes nothing new, where joining them first would for every comparison."""
    return _comparable(f"{title}{description}")


def text_similarity(a: str, b: str) -> float:
    """Character-level Indel similarity (rapidfuzz ``fuzz.ratio``) in 0..1; see the module doc for why."""
    a, b = _comparable(a), _comparable(b)
    if not a or not b:
        return 0.0
    return fuzz.ratio(a, b) / 100


def bounding_box(lat: float, lng: float, radius_m: float) -> tuple[float, float, float, float]:
    """``(min_lat, max_lat, min_lng, max_lng)`` holding every point within ``radius_m``.

    For an index pre-filter before :func:`find_duplicate`, so it must never be too small:
    it uses the same sphere as :func:`haversine_m`, and the exact widest longitude of a
    spherical cap (``asin(sin(r/R) / cos(lat))``). Near a pole or across the antimeridian it
    returns the full longitude range rather than a wrapped box a ``BETWEEN`` cannot use.
    """
    if radius_m < 0:
        raise ValueError("radius_m must not be negative")
    angular = radius_m / EARTH_RADIUS_M
    dlat = math.degrees(angular)
    min_lat, max_lat = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    sin_ratio = math.sin(min(angular, math.pi / 2)) / max(1e-12, math.cos(math.radians(lat)))
    if min_lat <= -90 or max_lat >= 90 or sin_ratio >= 1:
        return min_lat, max_lat, -180.0, 180.0
    dlng = math.degrees(math.asin(sin_ratio))
    if lng - dlng < -180 or lng + dlng > 180:
        return min_lat, max_lat, -180.0, 180.0
    return min_lat, max_lat, lng - dlng, lng + dlng


def _distance(lat: float | None, lng: float | None, candidate: Candidate) -> float | None:
    if lat is None or lng is None or candidate.lat is None or candidate.lng is None:
        return None
    return haversine_m(lat, lng, candidate.lat, candidate.lng)


def _required_similarity(
    distance: float | None, township: str | None, candidate: Candidate, *, max_distance_m: float, min_similarity: float
) -> float | None:
    """How alike the texts must be for this candidate to count; None when it is out of reach."""
    if distance is not None:
        return min_similarity if distance <= max_distance_m else None
    if township and township == candidate.township:
        return _township_only(min_similarity)
    return None


def _township_only(min_similarity: float) -> float:
    """The similarity needed when only the township says two appeals are near."""
    return min(1.0, min_similarity + NO_COORDINATES_STRICTER)


def _in_window(candidates: Iterable[Candidate], earliest: datetime, latest: datetime) -> list[Candidate]:
    """The candidates received within ``[earliest, latest]``; a naive time among them is a ValueError naming it."""
    candidates = list(candidates)
    try:
        return [c for c in candidates if earliest <= c.received_at <= latest]
    except TypeError:  # naive against aware: find which, and say so
        for candidate in candidates:
            _require_aware(candidate.received_at, f"candidate {candidate.case_id} received_at")
        raise


def _reachable(
    lat: float | None, lng: float | None, township: str | None, candidates: list[Candidate], *,
    max_distance_m: float, min_similarity: float,
) -> list[tuple[Candidate, float | None, float]]:
    """``(candidate, distance, similarity it needs)`` for each candidate within reach
    (``_required_similarity``). An appeal without coordinates reaches only its township's
    cases, at the stricter similarity, whatever theirs: one comparison each, not two calls
    (a street's 200 candidates per appeal made those calls most of the search's time)."""
    if lat is None or lng is None:
        if not township:
            return []
        needed = _township_only(min_similarity)
        return [(c, None, needed) for c in candidates if c.township == township]
    reachable = []
    for candidate in candidates:
        distance = _distance(lat, lng, candidate)
        needed = _required_similarity(distance, township, candidate, max_distance_m=max_distance_m, min_similarity=min_similarity)
        if needed is not None:
            reachable.append((candidate, distance, needed))
    return reachable


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
    """The open case this appeal duplicates, or None. Rules in the module doc."""
    _require_aware(received_at, "received_at")
    if max_distance_m < 0 or window < timedelta(0) or not 0 <= min_similarity <= 1:
        raise ValueError("max_distance_m and window must not be negative; min_similarity is in 0..1")
    reachable = _reachable(
        lat, lng, township, _in_window(candidates, received_at - window, received_at),
        max_distance_m=max_distance_m, min_similarity=min_similarity,
    )  # fmt: skip
    if not reachable:
        return None
    lowest = min(needed for _, _, needed in reachable)
    similarities = _similarities(title, description, [candidate for candidate, _, _ in reachable], at_least=lowest)
    ranked = [
        (_preference(similarity, distance, candidate), _match(candidate, similarity, distance))
        for (candidate, distance, needed), similarity in zip(reachable, similarities, strict=True)
        if similarity >= needed
    ]
    return min(ranked, key=lambda item: item[0])[1] if ranked else None


def _similarities(title: str, description: str, candidates: list[Candidate], *, at_least: float) -> list[float]:
    """How alike the appeal is to each candidate: the better of title vs title and full text vs
    full text (``text_similarity``); 0 where it is below ``at_least``.

    Titles carry the matter in a few characters; descriptions vary in length and detail and
    would dilute a clear title match, but they rescue a vague title. Up to 200 candidates per
    appeal: rapidfuzz's ``process.extract`` compares them all in one call (the same
    ``fuzz.ratio``), which a Python loop of 400 ``text_similarity`` calls took several times
    longer to do."""
    scores = [0.0] * len(candidates)
    pairs = (
        (_comparable(title), [_comparable(c.title) for c in candidates]),
        (_comparable_text(title, description), [_comparable_text(c.title, c.description) for c in candidates]),
    )
    # The cutoff a hair lower, so that rounding never drops a score the caller would keep.
    cutoff = max(0.0, at_least * 100 - 1e-6)
    for query, texts in pairs:
        if not query:
            continue  # empty text compares as 0 (a non-empty query against an empty text already scores 0)
        for _, score, index in process.extract(query, texts, scorer=fuzz.ratio, processor=None, limit=None, score_cutoff=cutoff):
            scores[index] = max(scores[index], score / 100)
    return scores


def _preference(similarity: float, distance: float | None, candidate: Candidate) -> tuple[float, float, float, str]:
    """Sort key, smallest first: most similar, then nearest (unknown distance last), then newest, then case id."""
    nearness = math.inf if distance is None else distance
    return (-similarity, nearness, -candidate.received_at.timestamp(), candidate.case_id)


def _match(candidate: Candidate, similarity: float, distance: float | None) -> Match:
    return Match(candidate.case_id, round(similarity, 3), None if distance is None else round(distance, 1))
