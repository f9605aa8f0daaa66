"""The bulletin's CSV keeps a unit name that looks like a formula as text (issue #20): the
directory may name a unit ``=HYPERLINK(…)``, and a spreadsheet must not make it a live
link (OWASP CSV injection: a cell starting with = + - @ tab or CR gets a leading ')."""

from __future__ import annotations

import csv
import io
import json

import pytest

from scoring.app import create_app
from scoring.settings import ScoringSettings
from services.directory.publisher import topic_spec
from shared.bus import ensure_topics
from shared.orgdata import DEMO_FILE
from shared.orgfollow import publish_snapshot
from shared.actors import actor_headers
from shared.events import Role
from shared.testing import Infra, running, service_settings, unique

ZJJ = actor_headers("zjj-clerk", Role.dept_clerk, "LB-XC-ZJJ")

NAMES = {
    "LB-XC-JTJ": '=HYPERLINK("http://evil.example/x","交通运输局")',
    "LB-XC-SLJ": "+1+cmd|' /C calc'!A0",
    "LB-XC-ZJJ": "-2+3",
    "LB-XC-NYJ": "@SUM(1+1)",
    "LB-XC-CG": "=cmd|' /C calc'!A0",
}


@pytest.fixture(scope="module")
async def scoring(infra: Infra):
    settings = service_settings(
        ScoringSettings, infra, topic=unique("lifecycle"), database=unique("scoring"),
        test_clock="2026-11-21T04:00:00+00:00",
        org_topic=unique("org"),  # its own: the renamed units must not reach other tests' services
    )
    async with running(create_app(settings), settings) as service:
        yield service


async def test_formula_like_unit_names_stay_text_in_the_csv(scoring, infra) -> None:
    document = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    for unit in document["units"]:
        if unit["code"] in NAMES:
            unit["name"] = NAMES[unit["code"]]
            unit.pop("short_name", None)
    topic = scoring.settings.org_topic
    await ensure_topics(infra.bootstrap_servers, [topic_spec(topic, 1)])
    await publish_snapshot(infra.bootstrap_servers, topic, 2, document)
    await scoring.runtime.org_follower.wait_for_version(2, timeout=30)

    answer = await scoring.client.get("/api/v1/bulletins/LB-XC/weekly", params={"date": "2026-11-18", "format": "csv"}, headers=ZJJ)
    assert answer.status_code == 200, answer.text
    rows = list(csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))))
    names = {row[1]: row[2] for row in rows[1:]}
    assert {code: names[code] for code in NAMES} == {code: "'" + name for code, name in NAMES.items()}
    # Nothing else is touched: ordinary names and the figures stay as they were.
    assert names["LB-XC-MZJ"] == "民政局"
    figures = [cell for row in rows[1:] for cell in (row[0], row[1], *row[3:])]
    assert figures and not any(cell.startswith("'") for cell in figures)


def test_only_cells_that_would_start_a_formula_are_quoted() -> None:
    from scoring.bulletin import spreadsheet_safe

    assert [spreadsheet_safe(v) for v in ("=1", "+1", "-1", "@A", "\tx", "\rx")] == ["'=1", "'+1", "'-1", "'@A", "'\tx", "'\rx"]
    assert [spreadsheet_safe(v) for v in ("通挽镇", "95.28%", "a=b", "", None, 3, "—")] == ["通挽镇", "95.28%", "a=b", "", None, 3, "—"]
