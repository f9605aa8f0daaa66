"""intake.locate: 定位 from a point, from the address text, or not at all; the street cut (PIPL)."""

import pytest

from intake.locate import Located, locate, match_address, street_of
from shared.orgdata import load_org, parse_org

ORG = load_org()
IN_CZ_G01 = (24.0685, 108.661)  # inside 忻城县城关镇城中社区第一网格 (西宁街)
NANNING = (22.817, 108.366)  # outside every polygon of the demo organisation


def test_a_point_inside_a_chengguan_grid_gives_grid_village_township_county():
    found = locate(ORG, lat=IN_CZ_G01[0], lng=IN_CZ_G01[1], address=None)
    assert found == Located(
        township="LB-XC-CG", village="LB-XC-CG-CZ", grid="LB-XC-CG-CZ-G01", county="LB-XC",
        street=None, confidence=1.0, method="point",
    )  # fmt: skip


def test_every_grid_is_found_from_its_own_centre():
    for grid in ORG.of_kind("grid"):
        lat = sum(p[0] for p in grid.polygon) / len(grid.polygon)
        lng = sum(p[1] for p in grid.polygon) / len(grid.polygon)
        found = locate(ORG, lat=lat, lng=lng, address=None)
        assert (found.grid, found.village, found.method) == (grid.code, grid.parent, "point")


def test_coordinates_win_over_the_address_but_the_street_comes_from_the_address():
    found = locate(ORG, lat=IN_CZ_G01[0], lng=IN_CZ_G01[1], address="武宣县通挽镇大塘村鱼塘边")
    assert (found.grid, found.method, found.street) == ("LB-XC-CG-CZ-G01", "point", "武宣县通挽镇大塘村鱼塘边")


def test_a_point_on_the_line_between_two_grids_lands_in_the_first():
    g01, g02 = ORG.unit("LB-XC-CG-CZ-G01"), ORG.unit("LB-XC-CG-CZ-G02")
    shared_lng = max(p[1] for p in g01.polygon)
    assert shared_lng == min(p[1] for p in g02.polygon)
    found = locate(ORG, lat=24.0685, lng=shared_lng, address=None)
    assert (found.grid, found.confidence) == ("LB-XC-CG-CZ-G01", 1.0)


def test_a_point_outside_every_polygon_falls_back_to_the_address_or_to_nobody():
    nowhere = locate(ORG, lat=NANNING[0], lng=NANNING[1], address=None)
    assert nowhere == Located(confidence=0.0, method="none")
    by_text = locate(ORG, lat=NANNING[0], lng=NANNING[1], address="武宣县通挽镇大塘村")
    assert (by_text.village, by_text.method, by_text.confidence) == ("LB-WX-TW-DT", "address", 0.7)
    half = locate(ORG, lat=24.0, lng=None, address=None)  # a latitude alone is no point
    assert half.method == "none"


def test_a_point_in_the_township_but_between_its_villages_gives_the_township():
    found = locate(ORG, lat=24.0600, lng=108.6545, address=None)  # 城关镇, west of 板江村, south of 城西社区
    assert (found.township, found.village, found.grid, found.method, found.confidence) == ("LB-XC-CG", None, None, "point", 0.5)
    better = locate(ORG, lat=24.0600, lng=108.6545, address="城关镇板江村")
    assert (better.village, better.method, better.confidence) == ("LB-XC-CG-BJ", "address", 0.7)
    county_only = locate(ORG, lat=24.0600, lng=108.6545, address="忻城县")
    assert (county_only.township, county_only.method) == ("LB-XC-CG", "point")


def test_the_address_names_a_village_and_so_its_township():
    found = locate(ORG, lat=None, lng=None, address="武宣县通挽镇大塘村鱼塘边")
    assert found == Located(
        township="LB-WX-TW", village="LB-WX-TW-DT", grid=None, county="LB-WX",
        street="武宣县通挽镇大塘村鱼塘边", confidence=0.7, method="address",
    )  # fmt: skip
    village_alone = locate(ORG, lat=None, lng=None, address="大塘村鱼塘边")
    assert (village_alone.village, village_alone.township, village_alone.county) == ("LB-WX-TW-DT", "LB-WX-TW", "LB-WX")


def test_township_and_county_names_give_their_own_level_only():
    township = locate(ORG, lat=None, lng=None, address="城关镇西宁街12号3栋")
    assert (township.township, township.village, township.confidence, township.street) == ("LB-XC-CG", None, 0.5, "城关镇西宁街")
    county = locate(ORG, lat=None, lng=None, address="忻城县政府门口")
    assert (county.county, county.township, county.confidence, county.method) == ("LB-XC", None, 0.3, "address")


def test_the_longest_name_wins():
    grid = locate(ORG, lat=None, lng=None, address="城关镇城中社区第二网格")
    assert (grid.grid, grid.village, grid.confidence) == ("LB-XC-CG-CZ-G02", "LB-XC-CG-CZ", 0.8)
    community = locate(ORG, lat=None, lng=None, address="通挽镇通挽社区卫生室旁")
    assert (community.village, community.township) == ("LB-WX-TW-TW", "LB-WX-TW")


def test_names_that_disagree_give_the_level_they_agree_on():
    border = locate(ORG, lat=None, lng=None, address="城关镇城中社区与城西社区交界处")
    assert (border.township, border.village, border.confidence) == ("LB-XC-CG", None, 0.5)
    wrong_township = locate(ORG, lat=None, lng=None, address="武宣县武宣镇大塘村")  # 大塘村 is 通挽镇's
    assert (wrong_township.county, wrong_township.township, wrong_township.confidence) == ("LB-WX", None, 0.3)
    wrong_county = locate(ORG, lat=None, lng=None, address="忻城县大塘村")  # 大塘村 is 武宣县's
    assert (wrong_county.method, wrong_county.confidence, wrong_county.street) == ("none", 0.0, "忻城县大塘村")
    # An address written with the old, wrong county: the township and village agree, and win.
    old_tree = locate(ORG, lat=None, lng=None, address="忻城县通挽镇江龙村")
    assert (old_tree.county, old_tree.township, old_tree.village) == ("LB-WX", "LB-WX-TW", "LB-WX-TW-JL")


def test_a_name_two_counties_share_needs_the_county_or_the_township():
    org = parse_org({
        "name": "two 城东社区", "version": 1,
        "units": [
            {"code": "LB", "name": "来宾市", "kind": "city"},
            {"code": "LB-XC", "name": "忻城县", "kind": "county", "parent": "LB"},
            {"code": "LB-XC-CG", "name": "城关镇", "kind": "township", "parent": "LB-XC"},
            {"code": "LB-XC-CG-CD", "name": "城东社区", "kind": "village", "parent": "LB-XC-CG"},
            {"code": "LB-WX", "name": "武宣县", "kind": "county", "parent": "LB"},
            {"code": "LB-WX-WX", "name": "武宣镇", "kind": "township", "parent": "LB-WX"},
            {"code": "LB-WX-WX-CD", "name": "城东社区", "kind": "village", "parent": "LB-WX-WX"},
        ],
    })  # fmt: skip
    assert [u.code for u in org.by_name("城东社区")] == ["LB-XC-CG-CD", "LB-WX-WX-CD"]
    assert locate(org, lat=None, lng=None, address="城东社区菜市场").method == "none"
    assert match_address(org, "城东社区菜市场") is None
    assert locate(org, lat=None, lng=None, address="武宣县城东社区菜市场").village == "LB-WX-WX-CD"
    assert locate(org, lat=None, lng=None, address="城关镇城东社区").village == "LB-XC-CG-CD"


def test_no_place_named_goes_to_manual_triage():
    for address in ("不知道在哪", "", None, "来宾市"):
        found = locate(ORG, lat=None, lng=None, address=address)
        assert (found.method, found.confidence, found.township) == ("none", 0.0, None), address


def test_full_width_digits_and_spaces_do_not_hide_a_name():
    found = locate(ORG, lat=None, lng=None, address="武宣县 通挽镇 六纳村 ５组")
    assert found.village == "LB-WX-TW-LN"
    assert found.street == "武宣县 通挽镇 六纳村 5组"


@pytest.mark.parametrize(
    ("address", "street"),
    [
        ("城关镇西宁街12号3栋", "城关镇西宁街"),
        ("忻城县城关镇城中社区西宁街12号3栋", "忻城县城关镇城中社区西宁街"),
        ("西宁街12号", "西宁街"),
        ("西宁街１２号", "西宁街"),  # full-width digits
        ("西宁街 12 号，3栋", "西宁街"),
        ("城西路幸福小区3单元501室", "城西路幸福小区"),
        ("西宁街8栋2单元", "西宁街"),
        ("西宁街A栋", "西宁街"),
        ("西宁街12-3-501", "西宁街"),
        ("西宁街十二号", "西宁街"),
        ("通挽镇大塘村3户", "通挽镇大塘村"),
        ("六纳村5组", "六纳村5组"),  # a village group is not a house
        ("武宣县通挽镇大塘村鱼塘边", "武宣县通挽镇大塘村鱼塘边"),
        ("12号", None),
        ("  ", None),
        (None, None),
    ],
)
def test_the_street_cut_drops_house_building_unit_and_room(address, street):
    assert street_of(address) == street
