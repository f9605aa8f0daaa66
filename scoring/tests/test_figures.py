"""The practice's published figures, reproduced by driving that many cases through events,
each read back as its county publishes it (the county's figure format: 武宣县 truncates to
two decimals, 来宾市 and its other counties round half-up to one).

The three township tallies (286 / 127 / 260 appeals) go through the real topic and the
running service in the default run; 双河市's 3,651 appeals too, but marked slow (about a
minute on two busy cores); the two largest (来宾 2,864 and 睢宁 16,513) go through events
by replaying the topic (test_large_figures.py, slow) and through the pure counting over
fact rows (test_rates.py).
"""

from datetime import UTC, datetime, timedelta

import pytest

from scoring.tests.factory import Case, publish_many
from shared.actors import actor_headers
from shared.testing import AUDITOR, OPS, eventually

START = {
    "tw_window": datetime(2026, 9, 1, 1, 0, tzinfo=UTC),  # 通挽镇 五事 window: September
    "tw_second": datetime(2026, 10, 1, 1, 0, tzinfo=UTC),  # 通挽镇, a second tally: October
    "cg": datetime(2026, 10, 1, 2, 0, tzinfo=UTC),  # 城关镇: October
    "sh": datetime(2026, 7, 1, 1, 0, tzinfo=UTC),  # 双河市 12345: the third quarter
}


def answered(appeals: int, solved: int) -> int:
    """How many of ``tally``'s cases got an answer (solved or not)."""
    return solved + sum(1 for i in range(solved, appeals) if i % 2)


def tally(appeals: int, solved: int, start: datetime, *, township=None, region=None, yellow: int = 0,
          rated: tuple[int, int] | None = None) -> list:
    """``appeals`` accepted cases, ``solved`` of them answered as solved; of the rest half are
    answered without solving, half not answered yet. ``rated`` (satisfied, rated): the first
    ``rated`` answered cases rated by the citizen, the first ``satisfied`` of them 满意."""
    events = []
    for i in range(appeals):
        at = start + timedelta(minutes=7 * i)
        case = Case(township=township, region=region)
        case.received(at).accepted(at + timedelta(minutes=1))
        if region:
            case.triaged(at + timedelta(minutes=2))
        if i < solved:
            case.resolved(f"JB-{i}", "LB-XC-ZJJ", at + timedelta(hours=20))
        elif i % 2:
            case.resolved(f"JB-{i}", "LB-XC-ZJJ", at + timedelta(hours=20), solved=False)
        if rated is not None and i < rated[1]:
            case.rated("满意" if i < rated[0] else "不满意", at + timedelta(days=1))
        if i < yellow:
            case.warned("LB-XC-ZJJ", "resolve", at + timedelta(days=5), at + timedelta(days=4))
        events.extend(case.events)
    return events


async def stats(service, path: str, **params) -> dict:
    response = await service.client.get(f"/api/v1/stats/{path}", params=params, headers=AUDITOR)
    assert response.status_code == 200, response.text
    return response.json()


async def test_township_figures_through_events(scoring, infra):
    events = [
        *tally(286, 275, START["tw_window"], township="LB-WX-TW"),
        *tally(127, 121, START["tw_second"], township="LB-WX-TW"),
        *tally(260, 253, START["cg"], township="LB-XC-CG", yellow=150),
    ]
    await publish_many(infra.bootstrap_servers, scoring.settings.kafka_topic, events)

    async def arrived() -> bool:
        body = await stats(scoring, "townships/LB-XC-CG", period="month", date="2026-10-15")
        return body["counts"]["solved"] == 253 and body["counts"]["yellow"] == 150 and body["counts"]["resolved"] == answered(260, 253)
    await eventually(arrived, timeout=60, interval=0.3, what="城关镇's 260 cases applied")
    async def tw_arrived() -> bool:
        body = await stats(scoring, "townships/LB-WX-TW", period="month", date="2026-10-15")
        return body["counts"]["resolved"] == answered(127, 121)
    await eventually(tw_arrived, timeout=60, interval=0.3, what="通挽镇's cases applied")

    window = await stats(scoring, "townships/LB-WX-TW", period="custom", **{"from": "2026-09-01", "to": "2026-09-30"})
    assert (window["counts"]["accepted"], window["counts"]["solved"]) == (286, 275)
    assert window["rates"]["resolution"] == "96.15%" and window["rates_exact"]["resolution"] == "25/26"  # 275/286 exactly

    # 武宣县 published it as 95.27%: 121/127 = 95.2755…% truncated (half-up would give 95.28%).
    second = await stats(scoring, "townships/LB-WX-TW", period="month", date="2026-10-15")
    assert (second["counts"]["accepted"], second["counts"]["solved"]) == (127, 121)
    assert second["rates"]["resolution"] == "95.27%" and second["rates_exact"]["resolution"] == "121/127"
    assert second["figure_format"] == {"rounding": "truncate", "places": 2}

    town = await stats(scoring, "townships/LB-XC-CG", period="month", date="2026-10-15")
    assert (town["counts"]["accepted"], town["counts"]["solved"]) == (260, 253)
    assert town["rates"]["resolution"] == "97.3%"  # 忻城县 publishes as 来宾 does: one decimal
    assert town["figure_format"] == {"rounding": "half_up", "places": 1}
    assert town["counts"]["yellow"] == 150  # 150 warnings issued

    # The county's bulletin shows the same figure the same way.
    bulletin = (await scoring.client.get("/api/v1/bulletins/LB-WX/monthly", params={"date": "2026-10-15"}, headers=AUDITOR)).json()
    assert bulletin["summary"]["rates"]["resolution"] == "95.27%" and bulletin["figure_format"]["rounding"] == "truncate"

    # Each county holds its own township's tallies: 忻城县 城关镇's, 武宣县 通挽镇's (October its
    # second tally; the third quarter its window only).
    county = await stats(scoring, "counties/LB-XC", period="month", date="2026-10-15")
    assert (county["counts"]["accepted"], county["counts"]["solved"], county["rates"]["resolution"]) == (260, 253, "97.3%")
    wuxuan = await stats(scoring, "counties/LB-WX", period="month", date="2026-10-15")
    assert (wuxuan["counts"]["accepted"], wuxuan["counts"]["solved"], wuxuan["rates"]["resolution"]) == (127, 121, "95.27%")
    quarter = await stats(scoring, "counties/LB-WX", period="quarter", date="2026-09-15")
    assert (quarter["counts"]["accepted"], quarter["counts"]["solved"]) == (286, 275)


async def test_a_countys_figure_format_is_its_own_setting(scoring):
    """Set per county, as a new version, by ops or a centre serving that county; the figures
    follow at once (通挽镇's October tally from the test above)."""
    wuxuan_centre = actor_headers("wx-sup", "centre_supervisor", "LB-WX-ZZZX")
    xincheng_centre = actor_headers("xc-sup", "centre_supervisor", "LB-XC-ZZZX")
    half_up = {"county": "LB-WX", "rounding": "half_up", "places": 2, "note": "试行四舍五入"}
    clerk = actor_headers("zjj", "dept_clerk", "LB-WX-ZJJ")
    assert (await scoring.client.post("/api/v1/figure-formats", json=half_up, headers=clerk)).status_code == 403
    refused = await scoring.client.post("/api/v1/figure-formats", json=half_up, headers=xincheng_centre)
    assert refused.status_code == 403 and refused.json()["type"].endswith("/outside-your-area"), refused.text
    bad = await scoring.client.post("/api/v1/figure-formats", json={**half_up, "places": 5}, headers=wuxuan_centre)
    assert bad.status_code == 422, bad.text

    made = await scoring.client.post("/api/v1/figure-formats", json=half_up, headers=wuxuan_centre)
    assert made.status_code == 201, made.text
    assert made.json()["current"] == {"rounding": "half_up", "places": 2}
    assert [(v["rounding"], v["places"]) for v in made.json()["versions"]] == [("truncate", 2), ("half_up", 2)]
    second = await stats(scoring, "townships/LB-WX-TW", period="month", date="2026-10-15")
    assert second["rates"]["resolution"] == "95.28%"

    back = {"county": "LB-WX", "rounding": "truncate", "places": 2, "note": "恢复截位"}
    assert (await scoring.client.post("/api/v1/figure-formats", json=back, headers=wuxuan_centre)).status_code == 201
    second = await stats(scoring, "townships/LB-WX-TW", period="month", date="2026-10-15")
    assert second["rates"]["resolution"] == "95.27%"
    listed = (await scoring.client.get("/api/v1/figure-formats", headers=wuxuan_centre)).json()
    assert listed["default"] == {"rounding": "half_up", "places": 2}
    assert listed["current"]["LB"] == {"rounding": "half_up", "places": 1}
    assert listed["current"]["LB-WX"] == {"rounding": "truncate", "places": 2}


@pytest.mark.slow
async def test_shuanghe_figure_through_events(scoring, infra):
    """双河市 12345: 3,651 accepted, 3,625 solved → 99.3%, satisfaction 98.8%, as 双河 publishes
    (half-up, one decimal: set as its format, 双河 not being in the demo directory)."""
    made = await scoring.client.post(
        "/api/v1/figure-formats", json={"county": "SHS", "rounding": "half_up", "places": 1}, headers=OPS
    )
    assert made.status_code == 201, made.text
    events = tally(3651, 3625, START["sh"], region="SHS", township="SHS-12345", rated=(3582, 3625))
    await publish_many(infra.bootstrap_servers, scoring.settings.kafka_topic, events)

    async def arrived() -> bool:
        body = await stats(scoring, "counties/SHS", period="quarter", date="2026-08-01")
        return body["counts"]["solved"] == 3625 and body["counts"]["resolved"] == answered(3651, 3625)
    await eventually(arrived, timeout=150, interval=0.5, what="3,651 双河 cases applied")

    city = await stats(scoring, "counties/SHS", period="quarter", date="2026-08-01")
    assert (city["counts"]["received"], city["counts"]["accepted"], city["counts"]["solved"]) == (3651, 3651, 3625)
    assert city["rates"]["resolution"] == "99.3%"  # 99.287…%
    assert (city["counts"]["rated"], city["counts"]["satisfied"], city["rates"]["satisfaction"]) == (3625, 3582, "98.8%")
