"""并单: the same matter reported twice nearby is merged; anything doubtful is not.

A wrong merge costs more than a missed one (the merged appeal gets no dispatch of its
own), so each rule is tested from both sides. Coordinates are around 城关镇, 忻城县.
"""

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from intake.appeal_store import CandidateCache, newest_distinct
from intake.dedup import Candidate, Match, _similarities, bounding_box, find_duplicate, haversine_m, text_similarity
from shared import geo
from shared.geo import EARTH_RADIUS_M

NOW = datetime(2026, 11, 22, 9, tzinfo=UTC)
LAT, LNG = 24.0685, 108.661  # 城关镇城中社区西宁街 (第一网格)
CHENGGUAN, TONGWAN = "LB-XC-CG", "LB-WX-TW"


def north(metres: float) -> float:
    """Latitude ``metres`` north of the village entrance (on the same sphere as haversine)."""
    return LAT + math.degrees(metres / EARTH_RADIUS_M)


def lamp(case_id: str = "c1", *, lat: float | None = LAT, lng: float | None = LNG, township: str | None = CHENGGUAN,
         days_ago: float = 1, title: str = "村口路灯不亮", description: str = "路灯坏了，晚上很黑") -> Candidate:  # fmt: skip
    return Candidate(case_id, title, description, lat, lng, township, NOW - timedelta(days=days_ago))


def report(*candidates: Candidate, title: str = "村口的路灯坏了不亮", description: str = "好几天了",
           lat: float | None = LAT, lng: float | None = LNG, township: str | None = CHENGGUAN, **rules) -> Match | None:  # fmt: skip
    return find_duplicate(title, description, lat, lng, township, NOW, candidates, **rules)


# --------------------------------------------------------------------------- text similarity


def test_the_same_matter_in_other_words_is_similar_and_another_matter_is_not():
    assert text_similarity("村口路灯不亮", "村口的路灯坏了不亮") == pytest.approx(0.8)
    assert text_similarity("路灯不亮", "鱼塘需要护栏") == 0.0
    assert text_similarity("村口路灯不亮", "村口道路坑洼") < 0.6  # same place, different matter


def test_similarity_is_symmetric_and_ignores_width_spaces_and_punctuation():
    assert text_similarity("ＡＢ栋 停水！", "ab栋停水") == 1.0
    assert text_similarity("广场舞噪音扰民", "噪音扰民") == text_similarity("噪音扰民", "广场舞噪音扰民")


def test_boilerplate_and_empty_text_never_look_alike():
    assert text_similarity("反映问题", "反映问题") == 0.0  # says nothing about which matter
    assert text_similarity("", "") == 0.0
    assert text_similarity("？？", "！！") == 0.0
    assert text_similarity("反映村口路灯不亮问题，希望尽快解决", "村口路灯不亮") == 1.0


# --------------------------------------------------------------------------- the rules


def test_the_same_lamp_reported_again_nearby_is_merged():
    match = report(lamp(lat=north(40)))
    assert match is not None and match.case_id == "c1"
    assert match.similarity >= 0.6
    assert match.distance_m == pytest.approx(40, abs=0.1)


def test_another_matter_at_the_same_spot_is_not_merged():
    assert report(lamp(), title="鱼塘需要护栏", description="孩子经过很危险") is None


def test_the_same_words_2_km_away_are_another_lamp():
    assert report(lamp(lat=north(2_000))) is None


def test_the_distance_limit_is_inclusive_and_configurable():
    assert report(lamp(lat=north(299))) is not None
    assert report(lamp(lat=north(301))) is None
    assert report(lamp(lat=north(700)), max_distance_m=1_000) is not None


def test_only_cases_received_within_the_window_before_count():
    assert report(lamp(days_ago=8)) is None  # a recurrence, not a duplicate
    assert report(lamp(days_ago=7)) is not None  # the edge of the window counts
    assert report(lamp(days_ago=-0.01)) is None  # received after this appeal
    assert report(lamp(days_ago=8), window=timedelta(days=10)) is not None


def test_coordinates_decide_even_across_a_township_border():
    assert report(lamp(lat=north(50), township=TONGWAN)) is not None


def test_without_coordinates_only_the_same_township_counts():
    same = report(lamp(), lat=None, lng=None)
    assert same is not None and same.distance_m is None
    assert report(lamp(lat=None, lng=None)) is not None  # the open case lacks them
    assert report(lamp(township=TONGWAN), lat=None, lng=None) is None
    assert report(lamp(township=None), lat=None, lng=None, township=None) is None  # unknown ≠ unknown


def test_without_coordinates_the_text_must_be_more_alike():
    # 0.73 similar: enough next door, not enough when only the township vouches for it
    dance = lamp(title="广场舞噪音扰民", description="")
    assert text_similarity("噪音扰民", "广场舞噪音扰民") == pytest.approx(0.727, abs=0.001)
    assert report(dance, title="噪音扰民", description="") is not None
    assert report(dance, title="噪音扰民", description="", lat=None, lng=None) is None


def test_a_vague_title_is_rescued_by_the_description_but_not_merged_on_its_own():
    vague = lamp(title="反映问题", description="城中社区村口路灯坏了不亮")
    assert report(vague, title="反映问题", description="村口路灯不亮") is not None
    other = lamp(title="反映问题", description="楼下烧烤店油烟太大")
    assert report(other, title="反映问题", description="村口路灯不亮") is None


def test_the_best_match_is_the_most_similar_then_the_nearest_then_the_newest():
    exact_far = lamp("exact", lat=north(250), title="村口的路灯坏了不亮", description="好几天了")
    close_near = lamp("close", lat=north(10))
    assert report(close_near, exact_far).case_id == "exact"

    near, far = lamp("near", lat=north(20)), lamp("far", lat=north(200))
    assert report(far, near).case_id == report(near, far).case_id == "near"
    assert report(lamp("unknown", lat=None, lng=None), lamp("known", lat=north(280))).case_id == "known"

    older, newer = lamp("older", days_ago=5), lamp("newer", days_ago=1)
    assert report(older, newer).case_id == report(newer, older).case_id == "newer"

    assert report(lamp("b"), lamp("a")).case_id == report(lamp("a"), lamp("b")).case_id == "a"


def test_the_bulk_comparison_is_the_better_of_the_title_and_the_full_text_pair_by_pair():
    title, description = "村口的路灯坏了不亮", "好几天了，晚上很黑"
    texts = [("村口路灯不亮", ""), ("反映问题", "村口路灯坏了"), ("", ""), ("？？", "！！"), ("鱼塘需要护栏", "鱼塘边没有护栏"),
             ("路灯", "村口的路灯坏了不亮好几天了，晚上很黑"), ("ＡＢ栋 停水！", "")]  # fmt: skip
    candidates = [lamp(f"c{i}", title=t, description=d) for i, (t, d) in enumerate(texts)]
    expected = [max(text_similarity(title, t), text_similarity(title + description, t + d)) for t, d in texts]
    assert _similarities(title, description, candidates, at_least=0) == expected
    assert 0 < min(e for e in expected if e) < max(expected) < 1  # the sample spans the range
    # Below the cutoff a score counts as 0; at or above it, as it is.
    cut = sorted(set(expected))[2]
    assert _similarities(title, description, candidates, at_least=cut) == [e if e >= cut else 0.0 for e in expected]
    assert _similarities("反映问题", "", candidates, at_least=0) == [0.0] * len(texts)  # nothing said: no match


def test_nothing_to_compare_with_is_no_duplicate():
    assert report() is None
    assert find_duplicate("村口路灯不亮", "", LAT, LNG, CHENGGUAN, NOW, iter([])) is None


def test_times_must_be_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        find_duplicate("路灯", "", LAT, LNG, CHENGGUAN, datetime(2026, 11, 22, 9), [lamp()])
    with pytest.raises(ValueError, match="timezone-aware"):
        report(Candidate("c1", "路灯", "", LAT, LNG, CHENGGUAN, datetime(2026, 11, 21, 9)))
    beijing = timezone(timedelta(hours=8))
    local = Candidate("c1", "村口路灯不亮", "", LAT, LNG, CHENGGUAN, datetime(2026, 11, 22, 16, 59, tzinfo=beijing))
    assert report(local) is not None  # 08:59 UTC, a minute before NOW


# --------------------------------------------------------------------------- geometry


def test_haversine_is_the_shared_one():
    assert haversine_m is geo.haversine_m
    assert haversine_m(LAT, LNG, north(300), LNG) == pytest.approx(300, abs=0.01)


@pytest.mark.parametrize("radius", [0.0, 1.0, 300.0, 5_000.0])
def test_the_bounding_box_holds_every_point_of_the_circle_and_not_much_more(radius):
    min_lat, max_lat, min_lng, max_lng = bounding_box(LAT, LNG, radius)
    for bearing in range(0, 360, 5):
        lat, lng = _destination(LAT, LNG, radius, bearing)
        assert min_lat - 1e-12 <= lat <= max_lat + 1e-12 and min_lng - 1e-12 <= lng <= max_lng + 1e-12, bearing
    assert haversine_m(min_lat, LNG, max_lat, LNG) == pytest.approx(2 * radius, abs=0.01)
    assert haversine_m(LAT, min_lng, LAT, max_lng) <= 2 * radius * 1.001 + 0.01


def test_the_bounding_box_never_wraps():
    assert bounding_box(89.999, 10.0, 1_000)[2:] == (-180.0, 180.0)  # covers the pole
    assert bounding_box(0.0, 179.999, 1_000)[2:] == (-180.0, 180.0)  # crosses the antimeridian
    with pytest.raises(ValueError):
        bounding_box(LAT, LNG, -1)


def _destination(lat: float, lng: float, metres: float, bearing_deg: float) -> tuple[float, float]:
    """The point ``metres`` away along a great circle (the exact circle the box must hold)."""
    d, b = metres / EARTH_RADIUS_M, math.radians(bearing_deg)
    p1, l1 = math.radians(lat), math.radians(lng)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), math.degrees(l2)


def test_the_candidate_cache_forgets_the_first_remembered_and_takes_the_township_given():
    cache = CandidateCache(size=2)
    at = datetime(2026, 5, 1, 9, tzinfo=UTC)
    a, b, c = (Candidate(case_id, "路灯不亮", "", None, None, "LB-XC-CG", at) for case_id in "abc")
    for candidate in (a, b, c):
        cache.remember(candidate)
    assert len(cache) == 2
    assert cache.missing(["a", "b", "c", "a", "d"]) == ["a", "d"]  # each unknown once, in order
    assert cache.get("b", "LB-XC-CG") is b
    moved = cache.get("c", "LB-WX-TW")  # a manual triage moved it
    assert moved.township == "LB-WX-TW" and moved[:5] == c[:5] and moved.received_at == c.received_at
    with pytest.raises(KeyError):
        cache.get("a", "LB-XC-CG")


def test_a_case_both_sides_of_the_search_name_counts_once_and_the_newest_are_kept():
    # (query, case, township) newest first, as NEAR_SQL merges the township side and the box side
    rows = [(0, "c9", "CG"), (1, "d1", "TW"), (0, "c9", "CG"), (0, "c8", "CG"), (0, "c7", None), (0, "c8", "CG")]
    assert newest_distinct(rows, 3, limit=2) == [[("c9", "CG"), ("c8", "CG")], [("d1", "TW")], []]
    assert newest_distinct(rows, 2)[0] == [("c9", "CG"), ("c8", "CG"), ("c7", None)]
