"""一周一通报、一月一点评 on schedule: which periods are due when, and a running service
issuing them once, kept as issued."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from scoring.app import create_app
from scoring.schedule import due_periods
from scoring.settings import ScoringSettings
from shared.testing import CENTRE, Infra, eventually, running, service_settings, unique

BJ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("now", "week_start", "month_start"),
    [
        (datetime(2026, 11, 23, 9, 0, tzinfo=BJ), date(2026, 11, 16), date(2026, 10, 1)),  # Monday after 08:00
        (datetime(2026, 11, 23, 7, 59, tzinfo=BJ), date(2026, 11, 9), date(2026, 10, 1)),  # Monday before 08:00
        (datetime(2026, 12, 1, 8, 0, tzinfo=BJ), date(2026, 11, 23), date(2026, 11, 1)),  # the 1st at 08:00
        (datetime(2026, 12, 1, 0, 30, tzinfo=BJ), date(2026, 11, 23), date(2026, 10, 1)),  # the 1st, too early
    ],
)
def test_which_bulletins_are_due(now, week_start, month_start):
    due = dict(due_periods(now))
    assert due["weekly"].start == week_start and due["weekly"].kind == "week"
    assert due["monthly"].start == month_start and due["monthly"].kind == "month"


async def test_a_running_service_issues_each_bulletin_once_and_keeps_it_as_issued(infra: Infra):
    settings = service_settings(
        ScoringSettings, infra, topic=unique("lifecycle"), database=unique("scoring"),
        test_clock="2026-11-23T01:30:00+00:00",  # Monday 09:30 in Beijing
        bulletin_check_seconds=0.2,
    )
    async with running(create_app(settings), settings) as scoring:
        async def issued(kind):
            answer = await scoring.client.get(f"/api/v1/bulletins/LB-XC/{kind}/issued", headers=CENTRE)
            assert answer.status_code == 200, answer.text
            return answer.json()["items"] or None

        weekly = await eventually(lambda: issued("weekly"), what="last week's bulletin issued")
        monthly = await eventually(lambda: issued("monthly"), what="last month's review issued")
        assert [w["label"] for w in weekly] == ["2026-W47"] and [m["label"] for m in monthly] == ["2026-10"]

        kept = (await scoring.client.get("/api/v1/bulletins/LB-XC/weekly/issued/2026-W47", headers=CENTRE)).json()
        fresh = (await scoring.client.get("/api/v1/bulletins/LB-XC/weekly", params={"date": "2026-11-16"}, headers=CENTRE)).json()
        assert kept["period"] == fresh["period"] and kept["ranking"] == fresh["ranking"]
        html = await scoring.client.get("/api/v1/bulletins/LB-XC/weekly/issued/2026-W47", params={"format": "html"}, headers=CENTRE)
        assert html.status_code == 200 and "忻城县" in html.text
        missing = await scoring.client.get("/api/v1/bulletins/LB-XC/weekly/issued/2026-W01", headers=CENTRE)
        assert missing.status_code == 404

        # More rounds of the loop issue nothing twice.
        await asyncio.sleep(0.5)
        async with scoring.runtime.uow() as uow:
            rows = (await uow.session.execute(text("SELECT county, kind, count(*) FROM issued_bulletins GROUP BY 1, 2"))).all()
        assert rows and all(count == 1 for _, _, count in rows)
        assert {county for county, _, _ in rows} >= {"LB-XC", "LB-XB"}  # every county of the directory
