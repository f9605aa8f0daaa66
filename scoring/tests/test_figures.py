"""The practice's published figures, reproduced by driving that many cases through events.

The three township tallies (286 / 127 / 260 appeals) go through the real topic and the
running service in the default run; 双河市's 3,651 appeals too, but marked slow (about a
minute on two busy cores); the two largest (来宾 2,864 and 睢宁 16,513) go through events
by replaying the topic (test_large_figures.py, slow) and through the pure counting over
fact rows (test_rates.py).
"""

from datetime import UTC, datetime, timedelta

import pytest

from scoring.tests.factory import Case, publish_many
from shared.testing import AUDITOR, eventually

START = {
    "tw_window": datetime(2026, 9, 1, 1, 0, tzinfo=UTC),  # 通挽镇 五事 window: September
    "tw_second": datetime(2026, 10, 1, 1, 0, tzinfo=UTC),  # 通挽镇, a second tally: October
    "cg": datetime(2026, 10, 1, 2, 0, tzinfo=UTC),  # 城关镇: October
    "sh": datetime(2026, 7, 1, 1, 0, tzinfo=UTC),  # 双河市 12345: the third quarter
}


def answered(appeals: int, solved: int) -> int:
    """How many of ``tally``'s cases got an answer (solved or not)."""
    return solved + sum(1 for i in range(solved, appeals) if i % 2)


def tally(appeals: int, solved: int, start: datetime, *, township=None, region=None, yellow: int = 0) -> list:
    """``appeals`` accepted cases, ``solved`` of them answered as solved; of the rest half are
    answered without solving, half not answered yet."""
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

    # Published as 95.27%; 121/127 = 95.2755…% is 95.28% rounded half-up (see test_domain.py).
    second = await stats(scoring, "townships/LB-WX-TW", period="month", date="2026-10-15")
    assert (second["counts"]["accepted"], second["counts"]["solved"]) == (127, 121)
    assert second["rates"]["resolution"] == "95.28%"

    town = await stats(scoring, "townships/LB-XC-CG", period="month", date="2026-10-15")
    assert (town["counts"]["accepted"], town["counts"]["solved"]) == (260, 253)
    assert town["rates"]["resolution"] == "97.31%"  # published as 97.3%
    assert town["counts"]["yellow"] == 150  # 150 warnings issued

    # Each county holds its own township's tallies: 忻城县 城关镇's, 武宣县 通挽镇's (October its
    # second tally; the third quarter its window only).
    county = await stats(scoring, "counties/LB-XC", period="month", date="2026-10-15")
    assert (county["counts"]["accepted"], county["counts"]["solved"]) == (260, 253)
    wuxuan = await stats(scoring, "counties/LB-WX", period="month", date="2026-10-15")
    assert (wuxuan["counts"]["accepted"], wuxuan["counts"]["solved"]) == (127, 121)
    quarter = await stats(scoring, "counties/LB-WX", period="quarter", date="2026-09-15")
    assert (quarter["counts"]["accepted"], quarter["counts"]["solved"]) == (286, 275)


@pytest.mark.slow
async def test_shuanghe_figure_through_events(scoring, infra):
    """双河市 12345: 3,651 accepted, 3,625 solved → 99.29% (published as 99.3%)."""
    events = tally(3651, 3625, START["sh"], region="SHS", township="SHS-12345")
    await publish_many(infra.bootstrap_servers, scoring.settings.kafka_topic, events)

    async def arrived() -> bool:
        body = await stats(scoring, "counties/SHS", period="quarter", date="2026-08-01")
        return body["counts"]["solved"] == 3625 and body["counts"]["resolved"] == answered(3651, 3625)
    await eventually(arrived, timeout=150, interval=0.5, what="3,651 双河 cases applied")

    city = await stats(scoring, "counties/SHS", period="quarter", date="2026-08-01")
    assert (city["counts"]["received"], city["counts"]["accepted"], city["counts"]["solved"]) == (3651, 3651, 3625)
    assert city["rates"]["resolution"] == "99.29%"
