"""Intake's pure rules: classification, duplicates, location, screening."""

from datetime import UTC, datetime, timedelta

from intake import classify as classify_module
from intake.model import load_examples, train
from intake.dedup import Candidate, bounding_box, find_duplicate, text_similarity
from intake.domain import screen, tracking_number
from intake.locate import locate, street_of
from shared.errors import NotFound, WrongState
from shared.events import FiveMatters, Urgency
from shared.geo import haversine_m, point_in_polygon
from shared.orgdata import load_org

ORG = load_org()
MODEL = train(load_examples())


def classify(title, description, **options):
    return classify_module.classify(title, description, MODEL, **options)
NOW = datetime(2026, 11, 22, 9, tzinfo=UTC)


def test_the_streetlamp_is_infrastructure():
    found = classify("村口路灯不亮", "城关镇城中社区村口的路灯坏了三天，晚上很黑")
    assert (found.subject_class, found.needs_manual_triage) == ("infrastructure", False)
    assert any("路灯" in word for word in found.matched)


def test_the_fishpond_guardrail_is_a_wish_about_safety():
    found = classify("鱼塘边需要安装护栏", "村里鱼塘边没有护栏，孩子放学经过很危险，希望安装护栏")
    assert found.subject_class == "infrastructure"
    assert found.urgency is Urgency.urgent
    assert found.category in (FiveMatters.hope, FiveMatters.anxiety)


def test_noise_disputes_allowances_and_emergencies():
    assert classify("晚上施工噪音扰民", "工地半夜还在施工").category is FiveMatters.annoyance
    assert classify("老板拖欠工资", "工地老板拖欠工资三个月").subject_class == "labour"
    assert classify("咨询低保政策", "请问低保怎么办理").subject_class in ("civil_affairs", "consultation")
    emergency = classify("有人掉进鱼塘", "孩子落水了，快来人")
    assert (emergency.urgency, emergency.category) == (Urgency.emergency, FiveMatters.emergency)


def test_unclear_text_goes_to_a_person_or_the_consultation_line_and_a_hint_is_kept():
    # "I have a matter, call me" names no line of service: a person triages it, or — when the
    # model is sure it is a question with no department's matter — it is a consultation
    # (政策咨询), answered by calling the citizen back; never a department's order.
    unclear = classify("有个事情", "请联系我")
    assert unclear.needs_manual_triage or unclear.subject_class == "consultation"
    assert classify("😀😀😀", "！！").needs_manual_triage  # nothing the model can read
    assert classify("路灯不亮", "坏了", hinted_category=FiveMatters.worry).category is FiveMatters.worry


def test_same_matter_nearby_is_a_duplicate_but_not_far_away_or_long_ago_or_another_matter():
    open_case = Candidate("c1", "村口路灯不亮", "路灯坏了", 24.065, 108.655, "LB-XC-CG", NOW - timedelta(days=1))
    assert text_similarity("村口路灯不亮", "村口的路灯坏了不亮") > 0.6
    match = find_duplicate("村口的路灯坏了不亮", "晚上很黑", 24.0651, 108.6551, "LB-XC-CG", NOW, [open_case])
    assert match is not None and match.case_id == "c1" and match.distance_m < 300
    assert find_duplicate("鱼塘需要护栏", "危险", 24.0651, 108.6551, "LB-XC-CG", NOW, [open_case]) is None
    assert find_duplicate("村口路灯不亮", "", 24.083, 108.655, "LB-XC-CG", NOW, [open_case]) is None  # 2 km
    old = Candidate("c0", "村口路灯不亮", "", 24.065, 108.655, "LB-XC-CG", NOW - timedelta(days=8))
    assert find_duplicate("村口路灯不亮", "", 24.065, 108.655, "LB-XC-CG", NOW, [old]) is None
    min_lat, max_lat, min_lng, max_lng = bounding_box(24.065, 108.655, 300)
    assert min_lat < 24.065 < max_lat and haversine_m(24.065, min_lng, 24.065, 108.655) > 299


def test_location_from_a_point_or_the_address_and_the_street_cut():
    grid = ORG.unit("LB-XC-CG-CZ-G01")
    lat = sum(p[0] for p in grid.polygon) / 4
    lng = sum(p[1] for p in grid.polygon) / 4
    assert point_in_polygon(lat, lng, grid.polygon)
    by_point = locate(ORG, lat=lat, lng=lng, address=None)
    assert (by_point.grid, by_point.village, by_point.township, by_point.method) == ("LB-XC-CG-CZ-G01", "LB-XC-CG-CZ", "LB-XC-CG", "point")
    by_text = locate(ORG, lat=None, lng=None, address="武宣县通挽镇大塘村鱼塘边")
    assert (by_text.village, by_text.township, by_text.county) == ("LB-WX-TW-DT", "LB-WX-TW", "LB-WX")
    assert locate(ORG, lat=None, lng=None, address="不知道在哪").method == "none"
    assert street_of("城关镇西宁街12号3栋") == "城关镇西宁街"


def test_the_catalogue_sends_streetlamps_to_the_county_and_disputes_to_the_township():
    assert ORG.owner_for("infrastructure", "LB-XC-CG-CZ", "村口路灯不亮") == "LB-XC-ZJJ"
    assert ORG.owner_for("disputes", "LB-WX-TW-DT") == "LB-WX-TW"


def test_screening_and_tracking_numbers():
    assert screen("工资", "法院已经立案了").code == "in_litigation"
    assert screen("测试", "test").code == "not_an_appeal"
    assert screen("村口路灯不亮", "坏了") is None
    assert tracking_number("XC", datetime(2026, 11, 22, 17, tzinfo=UTC), 123) == "XC-20261123-000123"


# 首问负责制: who first learned of the appeal (intake.domain.first_responsible_unit).


def _first(channel, role=None, unit=None, county=None, township=None, village=None):
    from intake.domain import first_responsible_unit

    return first_responsible_unit(ORG, channel=channel, filer_role=role, filer_unit=unit, county=county,
                                  township=township, village=village)  # fmt: skip


def test_the_first_unit_of_a_staff_filing_is_the_filers_unit_whatever_the_place():
    # 城东社区 is the neighbouring village of the same township: the window is 城中社区's, the place is not.
    assert _first("window", "village_staff", "LB-XC-CG-CZ", "LB-XC", "LB-XC-CG", "LB-XC-CG-CD") == "LB-XC-CG-CZ"
    assert _first("app", "dept_clerk", "LB-XC-ZJJ", "LB-XC", "LB-XC-CG", "LB-XC-CG-CZ") == "LB-XC-ZJJ"


def test_a_grid_workers_report_is_first_learned_by_the_grids_village():
    assert _first("grid", "grid_worker", "LB-XC-CG-CZ-G01", "LB-XC", "LB-XC-CG", "LB-XC-CG-CZ") == "LB-XC-CG-CZ"


def test_a_12345_ticket_is_first_learned_by_the_centre_of_its_county():
    assert _first("hotline", None, None, "LB-WX", "LB-WX-TW", "LB-WX-TW-JL") == "LB-WX-ZZZX"
    assert _first("hotline") is None  # placed nowhere: the centre triaging it sends it on


def test_a_citizens_own_channel_is_first_learned_by_the_place_village_else_township():
    assert _first("app", None, None, "LB-XC", "LB-XC-CG", "LB-XC-CG-CZ") == "LB-XC-CG-CZ"
    assert _first("wechat", None, None, "LB-XC", "LB-XC-CG", None) == "LB-XC-CG"
    assert _first("mailbox") is None
    # A citizen is no staff filer, whatever unit a header names.
    assert _first("app", "citizen", "LB-XC-ZJJ", "LB-XC", "LB-XC-CG", None) == "LB-XC-CG"


# 谁接待、谁负责: who closes a window appeal on the spot (intake.domain.on_spot_refusal).


def _on_spot(**changes):
    from intake.domain import on_spot_refusal

    facts = {"case_id": "c-1", "channel": "window", "status": "triaged", "received_by": "w-1", "actor_id": "w-1", "simple": True, "handled_by_unit": False, "rating": "满意"}
    return on_spot_refusal(**{**facts, **changes})


def test_only_the_receiver_closes_an_open_window_appeal_on_the_spot_with_a_satisfied_citizen():
    assert _on_spot() is None
    assert _on_spot(rating="基本满意") is None
    assert isinstance(_on_spot(actor_id="w-2"), NotFound)
    assert isinstance(_on_spot(channel="app", received_by=None), NotFound)
    assert _on_spot(status="closed").state == "closed"
    assert _on_spot(status="rated").state == "rated"
    assert isinstance(_on_spot(simple=False), WrongState)  # not in the 1-hour mode: it goes to a unit
    assert isinstance(_on_spot(handled_by_unit=True), WrongState)
    assert _on_spot(rating="不满意").field == "rating"


def test_a_simple_window_appeal_is_due_one_clock_hour_after_it_came_in():
    from shared.deadlines import window_simple_due

    # Saturday night in Beijing: clock time, not working time — the citizen is at the window now.
    received = datetime(2026, 11, 21, 14, 30, tzinfo=UTC)
    assert window_simple_due(received) == received + timedelta(hours=1)
