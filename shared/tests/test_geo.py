"""shared.geo: distances, point in polygon (boundary included), bounding boxes."""

import math

import pytest

from shared.geo import EARTH_RADIUS_M, bbox, haversine_m, in_bbox, point_in_polygon

SQUARE = [(24.064, 108.664), (24.064, 108.6675), (24.067, 108.6675), (24.067, 108.664)]  # 城东社区第一网格
# An L: the square (0..2, 0..2) without its north-east quarter (1..2, 1..2).
L_SHAPE = [(0, 0), (0, 2), (1, 2), (1, 1), (2, 1), (2, 0)]
DIAMOND = [(0, 1), (1, 2), (2, 1), (1, 0)]


def test_haversine_known_distances():
    assert haversine_m(24.066, 108.665, 24.066, 108.665) == 0
    one_degree = haversine_m(0, 0, 1, 0)
    assert one_degree == pytest.approx(EARTH_RADIUS_M * math.pi / 180)  # ≈ 111.2 km
    assert haversine_m(24.065, 108.655, 24.066, 108.655) == pytest.approx(111.2, abs=0.1)
    # A degree of longitude shrinks with the cosine of the latitude (≈ 101.6 km at 24°N).
    assert haversine_m(24.0, 108.0, 24.0, 109.0) == pytest.approx(101_600, rel=0.002)


def test_haversine_between_the_demo_towns():
    chengguan_to_tongwan = haversine_m(24.066, 108.665, 23.53, 109.433)  # 忻城县城关镇 → 武宣县通挽镇
    assert 98_000 < chengguan_to_tongwan < 98_600
    assert chengguan_to_tongwan == haversine_m(23.53, 109.433, 24.066, 108.665)
    assert haversine_m(0, 179.9, 0, -179.9) == pytest.approx(22_239, rel=0.001)  # across the antimeridian
    assert haversine_m(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_M)  # antipodes, no domain error


def test_point_inside_and_outside_a_grid():
    assert point_in_polygon(24.0655, 108.666, SQUARE)
    assert not point_in_polygon(24.0655, 108.668, SQUARE)  # just east
    assert not point_in_polygon(24.063, 108.666, SQUARE)  # just south
    assert not point_in_polygon(22.8, 108.3, SQUARE)  # Nanning


def test_the_boundary_counts_as_inside():
    assert point_in_polygon(24.064, 108.666, SQUARE)  # south edge
    assert point_in_polygon(24.0655, 108.6675, SQUARE)  # east edge
    assert point_in_polygon(24.067, 108.664, SQUARE)  # a vertex
    assert point_in_polygon(1, 1, L_SHAPE)  # the inner corner of the L


def test_concave_rings_and_rays_through_vertices():
    assert point_in_polygon(0.5, 1.5, L_SHAPE)
    assert point_in_polygon(1.5, 0.5, L_SHAPE)
    assert not point_in_polygon(1.5, 1.5, L_SHAPE)  # the missing quarter
    assert point_in_polygon(1, 0.5, DIAMOND)  # the ray passes exactly through the vertex (1, 2)
    assert not point_in_polygon(1, 2.5, DIAMOND)
    assert not point_in_polygon(1, -0.5, DIAMOND)


def test_open_and_closed_rings_agree_and_degenerate_rings_hold_nothing():
    closed = [*SQUARE, SQUARE[0]]
    for lat, lng in [(24.0655, 108.666), (24.064, 108.666), (24.0655, 108.668)]:
        assert point_in_polygon(lat, lng, closed) == point_in_polygon(lat, lng, SQUARE)
    assert not point_in_polygon(0, 0, [(0, 0), (1, 1)])
    assert not point_in_polygon(0, 0, [])


def test_bbox_and_in_bbox():
    box = bbox(SQUARE)
    assert box == (24.064, 24.067, 108.664, 108.6675)
    assert bbox(L_SHAPE) == (0, 2, 0, 2)
    assert in_bbox(24.064, 108.6675, box) and in_bbox(24.065, 108.665, box)
    assert not in_bbox(24.068, 108.665, box)
    with pytest.raises(ValueError, match="empty ring"):
        bbox([])
