"""shared.orgdata: the demo organisation of 来宾市, its checks on load, and the dispatch catalogue."""

import copy
import itertools
import json

import pytest

from shared.events import Role
from shared.geo import bbox, haversine_m
from shared.orgdata import (
    DEMO_FILE,
    SUBJECT_CLASSES,
    OrgDataError,
    OrgDirectory,
    load_org,
    parse_org,
)

ORG = load_org()
RAW = json.loads(DEMO_FILE.read_text(encoding="utf-8"))


def _demo() -> dict:
    return copy.deepcopy(RAW)


def _unit(data: dict, code: str) -> dict:
    return next(u for u in data["units"] if u["code"] == code)


# ---------------------------------------------------------------- the demo organisation


def test_the_demo_file_is_readable_json():
    text = DEMO_FILE.read_text(encoding="utf-8")
    assert "\\u" not in text, "Chinese is written as is (ensure_ascii=False)"
    assert '\n  "units": [\n    {\n      "code": "LB",' in text, "indent 2"
    assert '"name": "城关镇"' in text
    assert isinstance(ORG, OrgDirectory) and ORG.version >= 1


def test_the_tree_from_laibin_down_to_grids():
    assert ORG.unit("LB").name == "来宾市"
    counties = [u.name for u in ORG.children("LB") if u.kind == "county"]
    assert counties == ["忻城县", "兴宾区", "武宣县", "象州县"]
    townships = {ORG.unit(c).name: [u.name for u in ORG.children(c) if u.kind == "township"] for c in ("LB-XC", "LB-XB", "LB-WX", "LB-XZ")}
    # 通挽镇 is in 武宣县 (the fishpond story's 江龙村 is one of its villages), not in 忻城县.
    assert townships == {"忻城县": ["城关镇"], "兴宾区": ["迁江镇"], "武宣县": ["武宣镇", "通挽镇"], "象州县": ["象州镇"]}
    assert [u.name for u in ORG.children("LB-XC-CG") if u.kind == "village"] == ["城中社区", "城西社区", "城东社区", "板江村"]
    assert [u.name for u in ORG.children("LB-WX-TW") if u.kind == "village"] == ["通挽社区", "大塘村", "六纳村", "江龙村"]
    for township in ORG.of_kind("township"):
        villages = [u for u in ORG.children(township.code) if u.kind != "centre"]
        assert 2 <= len(villages) <= 4 and all(v.kind == "village" for v in villages), township.name
        for village in villages:
            grids = [u for u in ORG.children(village.code) if u.kind != "centre"]
            assert [g.kind for g in grids] == ["grid", "grid"], village.name
            assert [g.code for g in grids] == [f"{village.code}-G01", f"{village.code}-G02"]
            assert grids[0].name == f"{village.name}第一网格"


def test_codes_nest_like_the_tree():
    for unit in ORG.units:
        if unit.parent is not None:
            assert unit.code.startswith(unit.parent + "-"), unit.code


def test_townships_sit_roughly_where_the_real_towns_are():
    real = {"LB-XC-CG": (24.066, 108.665), "LB-WX-TW": (23.53, 109.433), "LB-XB-QJ": (23.63, 108.97), "LB-WX-WX": (23.59, 109.66), "LB-XZ-XZ": (23.96, 109.69)}
    for code, (lat, lng) in real.items():
        min_lat, max_lat, min_lng, max_lng = bbox(ORG.unit(code).polygon)
        centre = ((min_lat + max_lat) / 2, (min_lng + max_lng) / 2)
        assert haversine_m(*centre, lat, lng) < 3_000, code
    # 通挽镇 lies west of 武宣县城, tens of kilometres from it and far from 忻城's 城关镇.
    tongwan, wuxuan, chengguan = real["LB-WX-TW"], real["LB-WX-WX"], real["LB-XC-CG"]
    assert tongwan[1] < wuxuan[1] and 15_000 < haversine_m(*tongwan, *wuxuan) < 40_000
    assert haversine_m(*tongwan, *chengguan) > 80_000


def test_grids_are_a_few_hundred_metres_and_never_overlap():
    grids = ORG.of_kind("grid")
    assert len(grids) == 2 * len(ORG.of_kind("village")) == 30
    for grid in grids:
        min_lat, max_lat, min_lng, max_lng = bbox(grid.polygon)
        assert 200 < haversine_m(min_lat, min_lng, max_lat, min_lng) < 1_000
        assert 200 < haversine_m(min_lat, min_lng, min_lat, max_lng) < 1_000
    for a, b in itertools.combinations(grids, 2):
        a_lat0, a_lat1, a_lng0, a_lng1 = bbox(a.polygon)
        b_lat0, b_lat1, b_lng0, b_lng1 = bbox(b.polygon)
        interiors_meet = a_lat0 < b_lat1 and b_lat0 < a_lat1 and a_lng0 < b_lng1 and b_lng0 < a_lng1
        assert not interiors_meet, (a.code, b.code)


def test_villages_are_the_box_of_their_grids_and_townships_hold_their_villages():
    for village in ORG.of_kind("village"):
        boxes = [bbox(g.polygon) for g in ORG.children(village.code) if g.kind == "grid"]
        union = (min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes))
        assert bbox(village.polygon) == pytest.approx(union), village.code
        t = bbox(ORG.unit(village.parent).polygon)
        assert t[0] < union[0] and union[1] < t[1] and t[2] < union[2] and union[3] < t[3], village.code


def test_every_county_has_its_departments_and_its_centre():
    core = ["住建局", "水利局", "交通运输局", "自然资源局", "农业农村局", "人社局", "民政局", "生态环境局"]
    short = [u.short_name for u in ORG.departments("LB-XC")]
    assert short == [
        *core, "教育局", "卫健局", "市场监管局", "文旅局", "公安局", "城管局", "工信局", "供电公司", "自来水公司", "燃气公司",
    ]
    assert ORG.unit("LB-XC-ZJJ").name == "忻城县住房和城乡建设局"
    assert ORG.unit("LB-XC-ZJJ").duties == ("infrastructure", "housing")
    assert "agriculture" in ORG.unit("LB-XC-SLJ").duties
    for county in ORG.of_kind("county"):
        assert [u.short_name for u in ORG.departments(county.code)] == short, county.name
        centre = ORG.unit(ORG.centre_of(county.code))
        assert (centre.kind, centre.parent, centre.short_name) == ("centre", county.code, "综治中心")
    assert ORG.unit("LB-XC-ZZZX").name == "忻城县委政法委综治中心"
    assert all(set(u.duties) <= set(SUBJECT_CLASSES) for u in ORG.units)


def test_every_county_routes_every_line_of_public_service_to_the_unit_that_handles_it():
    """What citizens write about schools, clinics, prices, power cuts … has an owner in each
    county, one of that county's departments whose duties include it — not the township by default."""
    lines = {
        "education": "教育局", "health": "卫健局", "market": "市场监管局", "culture_tourism": "文旅局", "police": "公安局",
        "urban_management": "城管局", "telecom": "工信局", "power": "供电公司", "water_supply": "自来水公司",
        "gas": "燃气公司", "civil_affairs": "民政局", "labour": "人社局", "land": "自然资源局", "agriculture": "农业农村局",
    }
    for county in ORG.of_kind("county"):
        township = next(u for u in ORG.units if u.kind == "township" and u.parent == county.code)
        village = next(u for u in ORG.units if u.kind == "village" and u.parent == township.code)
        for subject, short_name in lines.items():
            owner = ORG.unit(ORG.owner_for(subject, village.code))
            assert (owner.short_name, owner.kind, owner.parent) == (short_name, "department", county.code), (county.name, subject)
            assert subject in owner.duties, (county.name, subject)


def test_one_demo_user_per_role_in_a_unit_that_fits():
    roles = {u.role for u in ORG.users}
    assert roles == set(Role) - {Role.system}
    assert ORG.user("demo-grid-worker").unit == "LB-XC-CG-CD-G01"  # 覃某 of 城东社区, the neighbouring village
    assert ORG.user("demo-grid-worker-cz").unit == "LB-XC-CG-CZ-G01"  # 小潘 of 城中社区: the streetlamp story
    assert ORG.user("demo-village-staff").unit == "LB-WX-TW-JL"  # the fishpond story: 江龙村's 五事 window
    assert ORG.user("demo-township-staff").unit == ORG.user("demo-township-head").unit == "LB-WX-TW"
    assert ORG.user("demo-centre-dispatcher").unit == "LB-XC-ZZZX"
    assert ORG.user("demo-centre-dispatcher-wx").unit == ORG.user("demo-centre-supervisor-wx").unit == "LB-WX-ZZZX"
    assert {ORG.user(u).unit for u in ("demo-dept-clerk-wx", "demo-dept-clerk-slj")} == {"LB-WX-ZJJ", "LB-WX-SLJ"}
    assert [u.id for u in ORG.users_with_role("township_head")] == ["demo-township-head-cg", "demo-township-head"]
    with pytest.raises(KeyError, match="no user 'nobody'"):
        ORG.user("nobody")


# ---------------------------------------------------------------- queries


def test_ancestors_county_township_village():
    assert [u.code for u in ORG.ancestors("LB-XC-CG-CZ-G01")] == ["LB-XC-CG-CZ", "LB-XC-CG", "LB-XC", "LB"]
    assert ORG.ancestors("LB") == []
    assert ORG.county_of("LB-WX-TW-DT-G02") == "LB-WX"
    assert ORG.county_of("LB-XC-SLJ") == "LB-XC"
    assert ORG.county_of("LB") is None
    assert ORG.township_of("LB-WX-TW-DT-G02") == "LB-WX-TW"
    assert ORG.township_of("LB-WX-TW") == "LB-WX-TW"
    assert ORG.township_of("LB-XC-ZJJ") is None
    assert ORG.village_of("LB-WX-TW-DT-G02") == "LB-WX-TW-DT"
    assert ORG.centre_of("LB-WX-TW-DT-G02") == "LB-WX-TW-ZZZX"  # 通挽镇's own centre
    assert ORG.centre_of("LB") == "LB-ZZZX"


def test_three_level_centres_each_serve_the_place_they_sit_in():
    """综治中心 at county, township and village level (来宾 runs three-level centres): the nearest
    one above a unit is its centre; a place without its own centre falls back to the next level."""
    assert ORG.centre_of("LB-WX-TW-JL-G01") == ORG.centre_of("LB-WX-TW-JL") == "LB-WX-TW-JL-ZZZX"
    assert ORG.centre_of("LB-WX-TW-LN") == ORG.centre_of("LB-WX-TW") == "LB-WX-TW-ZZZX"
    assert ORG.centre_of("LB-WX-WX-DX") == ORG.centre_of("LB-WX-ZJJ") == "LB-WX-ZZZX"
    assert ORG.centre_of("LB-XC-CG-CZ-G02") == "LB-XC-CG-CZ-ZZZX" and ORG.centre_of("LB-XC-CG-CD") == "LB-XC-CG-ZZZX"
    for code in ("LB-WX-TW-JL-ZZZX", "LB-WX-TW-ZZZX", "LB-XC-CG-CZ-ZZZX", "LB-XC-CG-ZZZX"):
        centre = ORG.unit(code)
        assert (centre.kind, centre.short_name, centre.polygon) == ("centre", "综治中心", None), code
    assert [u.kind for u in ORG.ancestors("LB-WX-TW-JL-ZZZX")] == ["village", "township", "county", "city"]


def test_a_centre_sits_at_city_county_township_or_village_level_never_in_a_grid():
    data = _demo()
    _unit(data, "LB-WX-TW-JL-ZZZX")["parent"] = "LB-WX-TW-JL-G01"
    message = _refused(data)
    assert "LB-WX-TW-JL-ZZZX (江龙村综治中心) is a centre under a grid (LB-WX-TW-JL-G01)" in message
    assert "a centre belongs under a city or a county or a township or a village" in message
    data = _demo()
    _unit(data, "LB-WX-TW-JL-ZZZX")["parent"] = "LB-WX-TW-DT"  # another village: still a village-level centre
    assert parse_org(data).centre_of("LB-WX-TW-DT-G01") == "LB-WX-TW-JL-ZZZX"


def test_unknown_codes_are_named_in_the_error():
    with pytest.raises(KeyError, match="no unit 'LB-XC-NOPE'"):
        ORG.unit("LB-XC-NOPE")
    with pytest.raises(KeyError, match="LB-XC-NOPE"):
        ORG.children("LB-XC-NOPE")
    assert not ORG.has_unit("LB-XC-NOPE") and ORG.has_unit("LB-XC")


def test_by_name_finds_full_and_short_names():
    assert [u.code for u in ORG.by_name("大塘村")] == ["LB-WX-TW-DT"]
    assert [u.code for u in ORG.by_name(" 城关镇 ")] == ["LB-XC-CG"]
    assert [u.code for u in ORG.by_name("住建局")] == ["LB-XC-ZJJ", "LB-XB-ZJJ", "LB-WX-ZJJ", "LB-XZ-ZJJ"]
    assert ORG.by_name("不存在村") == []


def test_containing_a_point():
    assert [u.code for u in ORG.containing(24.0685, 108.661)] == ["LB-XC-CG-CZ-G01"]
    assert [u.code for u in ORG.containing(24.0685, 108.661, "township")] == ["LB-XC-CG"]
    assert ORG.containing(22.8, 108.3) == []


# ---------------------------------------------------------------- the dispatch catalogue


def test_streetlamps_go_to_the_housing_bureau_and_disputes_stay_in_the_township():
    assert ORG.owner_for("infrastructure", "LB-XC-CG-CZ-G01", "西宁街路灯不亮") == "LB-XC-ZJJ"  # 城中社区 streetlamp
    # Other works start with the township (乡镇首办), which calls the county if it cannot (乡呼县应).
    assert ORG.owner_for("infrastructure", "LB-WX-TW-DT", "鱼塘边没有护栏") == "LB-WX-TW"
    assert ORG.owner_for("infrastructure", "LB-XC-CG-CZ") == "LB-XC-CG"
    assert ORG.owner_for("disputes", "LB-XC-CG-CZ") == "LB-XC-CG"
    assert ORG.owner_for("disputes", "LB-WX-TW-DT-G01") == "LB-WX-TW"
    assert ORG.owner_for("consultation", "LB-XB-QJ-LG") == "LB-XB-QJ"


def test_named_matters_go_to_the_department_that_can_handle_them():
    assert ORG.owner_for("agriculture", "LB-WX-TW-DT", "大塘村水渠堵塞，灌溉不了") == "LB-WX-SLJ"  # 武宣县水利局
    assert ORG.owner_for("agriculture", "LB-WX-TW-DT", "鱼塘养殖技术") == "LB-WX-NYJ"  # 农业农村局: farming, not water works
    assert ORG.owner_for("infrastructure", "LB-WX-TW-LN", "六纳村停水三天") == "LB-WX-SLJ"
    assert ORG.owner_for("disputes", "LB-WX-TW-DT", "邻里纠纷") == "LB-WX-TW"  # no line names it: the township
    assert ORG.owner_for("disputes", "LB-XC-CG-BJ", "工地老板拖欠工资三个月") == "LB-XC-RSJ"
    assert ORG.owner_for("public_safety", "LB-WX-TW-LN", "山体滑坡") == "LB-WX-ZRZYJ"
    assert ORG.owner_for("public_safety", "LB-WX-TW-LN", "治安问题") == "LB-WX-TW"
    assert ORG.owner_for("infrastructure", "LB-WX-WX-DX", "路灯坏了") == "LB-WX-ZJJ"  # each county its own bureau
    entry = ORG.entry_for("agriculture", "LB-WX-TW-DT", "水渠")
    assert entry.matter and "水利" in entry.matter


def test_highways_and_rural_roads_are_the_transport_bureaus_and_city_streets_are_not():
    # 公路 (国道 … 村道, their bridges) are 交通运输局's line in every county; streets, lamps and
    # drains stay with 住建 (市政), so no infrastructure line is the transport bureau's.
    for county in ("LB-XC", "LB-XB", "LB-WX", "LB-XZ"):
        entry = ORG.entry_for("transport", county, "村道边坡垮塌，车过不去")
        assert entry.owner == f"{county}-JTJ" and entry.matter and "农村公路" in entry.matter
    assert ORG.owner_for("transport", "LB-WX-TW-DT", "县道路面塌陷") == "LB-WX-JTJ"
    assert not [e for e in ORG.catalogue if e.subject_class == "infrastructure" and e.owner.endswith("-JTJ")]
    assert ORG.owner_for("infrastructure", "LB-XC", "县城主干道路灯不亮") == "LB-XC-ZJJ"


def test_the_nearest_area_wins_but_a_named_matter_beats_a_local_default():
    # 城关镇 is the county seat: town sanitation belongs to the housing bureau there, not elsewhere.
    assert ORG.owner_for("environment", "LB-XC-CG-CX", "垃圾没人清运") == "LB-XC-ZJJ"
    assert ORG.owner_for("environment", "LB-WX-TW-DT", "垃圾没人清运") == "LB-WX-TW"
    # Pollution is the eco-environment bureau's everywhere, the county seat included.
    assert ORG.owner_for("environment", "LB-XC-CG-CX", "工厂偷排污水") == "LB-XC-STHJJ"


def test_a_matter_located_only_to_the_county_goes_to_the_county_centre():
    assert ORG.owner_for("disputes", "LB-XC") == "LB-XC-ZZZX"
    assert ORG.owner_for("infrastructure", "LB-XC", "县城主干道路灯不亮") == "LB-XC-ZJJ"


def test_every_place_and_class_has_an_owner_in_its_own_county():
    for place in ORG.of_kind("village") + ORG.of_kind("grid"):
        for subject in SUBJECT_CLASSES:
            owner = ORG.owner_for(subject, place.code)
            assert ORG.county_of(owner) == ORG.county_of(place.code), (subject, place.code, owner)
            assert ORG.unit(owner).kind in ("township", "department", "centre")


def test_owner_for_refuses_unknown_classes_and_areas_and_gaps():
    with pytest.raises(ValueError, match="unknown subject class 'water'"):
        ORG.owner_for("water", "LB-XC-CG")
    with pytest.raises(KeyError, match="LB-XX"):
        ORG.owner_for("disputes", "LB-XX")
    data = _demo()
    data["catalogue"] = [e for e in data["catalogue"] if e["subject_class"] != "*"]
    with pytest.raises(LookupError, match="no catalogue entry covers disputes in LB-XC-CG"):
        parse_org(data).owner_for("disputes", "LB-XC-CG")


# ---------------------------------------------------------------- bad data is refused


def _refused(data: dict) -> str:
    with pytest.raises(OrgDataError) as caught:
        parse_org(data, "test org")
    return str(caught.value)


def test_duplicate_codes_and_missing_parents_are_refused():
    data = _demo()
    data["units"].append({"code": "LB-XC-CG", "name": "城关镇", "kind": "township", "parent": "LB-XC"})
    assert "unit codes used twice: ['LB-XC-CG']" in _refused(data)
    data = _demo()
    _unit(data, "LB-WX-TW-DT")["parent"] = "LB-XC-XX"
    message = _refused(data)
    assert message.startswith("test org is invalid:")
    assert "unit LB-WX-TW-DT (大塘村): parent LB-XC-XX does not exist" in message


def test_units_must_sit_under_the_right_kind_of_parent():
    data = _demo()
    _unit(data, "LB-WX-TW-DT-G01")["parent"] = "LB-WX-TW"
    assert "LB-WX-TW-DT-G01 (大塘村第一网格) is a grid under a township (LB-WX-TW); a grid belongs under a village" in _refused(data)
    data = _demo()
    _unit(data, "LB")["parent"] = "LB-XC"  # a cycle, too: still a clear message, no endless loop
    assert "unit LB (来宾市) is a city under a county (LB-XC)" in _refused(data)


def test_polygons_need_three_points_and_are_closed_automatically():
    data = _demo()
    _unit(data, "LB-XC-CG-BJ-G01")["polygon"] = [[24.06, 108.66], [24.061, 108.66], [24.06, 108.66]]
    message = _refused(data)
    assert "units[" in message and "LB-XC-CG-BJ-G01: polygon: a polygon needs at least 3 distinct points, got 2" in message
    data = _demo()
    _unit(data, "LB-XC-CG-BJ-G01")["polygon"] = [[95.0, 108.66], [24.061, 108.66], [24.06, 108.67]]
    assert "point (95.0, 108.66) is not a (lat, lng) pair" in _refused(data)
    data = _demo()
    _unit(data, "LB-XC-ZJJ")["polygon"] = [[24.06, 108.66], [24.061, 108.66], [24.06, 108.67]]
    assert "a department is not a place and has no polygon" in _refused(data)

    data = _demo()
    ring = _unit(data, "LB-XC-CG-BJ-G01")["polygon"]
    _unit(data, "LB-XC-CG-BJ-G01")["polygon"] = [*ring, ring[0]]  # given closed
    closed = parse_org(data).unit("LB-XC-CG-BJ-G01").polygon
    assert closed == ORG.unit("LB-XC-CG-BJ-G01").polygon and len(closed) == 4  # stored open either way


def test_subject_classes_users_and_catalogue_entries_are_checked():
    data = _demo()
    _unit(data, "LB-XC-SLJ")["duties"] = ["water"]
    assert "LB-XC-SLJ: duties: unknown subject classes ['water']" in _refused(data)

    data = _demo()
    data["users"][1]["unit"] = "LB-XC"
    data["users"].append({"id": "demo-ops", "name": "重复", "role": "ops", "unit": None})
    data["users"].append({"id": "x", "name": "某", "role": "mayor", "unit": None})
    message = _refused(data)
    assert "users[" in message and "role: Input should be 'citizen'" in message
    data["users"].pop()
    message = _refused(data)
    assert "user demo-grid-worker: a grid_worker works in a grid, not in a county (LB-XC)" in message
    assert "user id demo-ops used twice" in message

    data = _demo()
    data["catalogue"].append({"subject_class": "infrastructure", "area": "LB-XC", "owner": "LB-XB-ZJJ", "keywords": ["路灯", "市政", "道路", "排水", "下水道", "井盖", "马路"]})
    data["catalogue"].append({"subject_class": "housing", "area": "LB-XC-ZJJ", "owner": "LB-XC-ZJJ"})
    data["catalogue"].append({"subject_class": "housing", "area": "LB-XC-CG", "owner": "LB-XC-NOPE"})
    data["catalogue"].append({"subject_class": "housing", "area": "LB-XC-CG", "owner": "LB-XC-CG-CD-G01", "keywords": ["危房"]})
    data["catalogue"].append(dict(data["catalogue"][0]))
    message = _refused(data)
    assert "owner LB-XB-ZJJ belongs to LB-XB, not to the area's county LB-XC" in message
    assert "area LB-XC-ZJJ is not a place in the directory" in message
    assert "owner LB-XC-NOPE does not exist" in message
    assert "owner LB-XC-CG-CD-G01 is a grid" in message
    assert "repeats catalogue[0]" in message
    assert "(infrastructure in LB-XC) repeats catalogue[1]" in message  # two owners for one matter
    assert len(message.splitlines()) == 1 + 6  # the header, then one line per problem


def test_unknown_fields_and_broken_json_are_refused(tmp_path):
    data = _demo()
    _unit(data, "LB-XC")["parnet"] = "LB"
    assert "LB-XC: parnet: Extra inputs are not permitted" in _refused(data)

    broken = tmp_path / "org.json"
    broken.write_text('{"name": "x", "units": [', encoding="utf-8")
    with pytest.raises(OrgDataError, match=r"org.json is not valid JSON: line 1"):
        load_org(broken)

    good = tmp_path / "good.json"
    good.write_text(json.dumps(_demo(), ensure_ascii=False), encoding="utf-8")
    assert load_org(good) == ORG
