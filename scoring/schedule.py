"""一周一通报、一月一点评 on schedule: last week's bulletin is issued on Monday at 08:00 and
last month's review on the 1st at 08:00 (Beijing time), for every county of the directory,
and kept as issued (``issued_bulletins``) — later events change the on-demand view, never
what the county was sent.

Every replica runs the loop; the insert is keyed by county, kind and period, so a bulletin
is issued once however many replicas look at the same time, and a service that was down at
08:00 issues what it missed when it comes back.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from scoring import service
from scoring.models import issued_bulletins
from scoring.periods import BEIJING, Period, period_of
from shared.db import UnitOfWork
from shared.service import Runtime
from shared.tasks import stop_task

log = logging.getLogger(__name__)

ISSUE_HOUR = 8  # local time the bulletins go out
KINDS = {"weekly": "week", "monthly": "month"}


def due_periods(now: datetime) -> list[tuple[str, Period]]:
    """The latest weekly and monthly periods whose bulletins should exist at ``now``: the
    last complete week once Monday 08:00 has passed, the last complete month once the 1st
    08:00 has."""
    local = now.astimezone(BEIJING)
    day = local.date() if local.hour >= ISSUE_HOUR else local.date() - timedelta(days=1)
    return [(kind, period_of(unit, day).previous()) for kind, unit in KINDS.items()]


async def issued(uow: UnitOfWork, county: str, kind: str) -> list[Any]:
    async with uow:
        query = (
            select(issued_bulletins.c.label, issued_bulletins.c.period_start, issued_bulletins.c.issued_at)
            .where(issued_bulletins.c.county == county, issued_bulletins.c.kind == kind)
            .order_by(issued_bulletins.c.period_start.desc())
        )
        return list((await uow.session.execute(query)).all())


async def issued_document(uow: UnitOfWork, county: str, kind: str, label: str) -> dict[str, Any] | None:
    async with uow:
        query = select(issued_bulletins.c.document).where(
            issued_bulletins.c.county == county, issued_bulletins.c.kind == kind, issued_bulletins.c.label == label
        )
        return (await uow.session.execute(query)).scalar_one_or_none()


async def issue_due(runtime: Runtime, now: datetime, trend_periods: int) -> list[tuple[str, str, str]]:
    """Issue every bulletin due at ``now`` that is not issued yet; (county, kind, label) of
    each one issued by this call."""
    made = []
    for county in (unit.code for unit in runtime.org.of_kind("county")):
        for kind, period in due_periods(now):
            async with runtime.uow() as uow:
                exists = await uow.session.execute(
                    select(issued_bulletins.c.label).where(
                        issued_bulletins.c.county == county, issued_bulletins.c.kind == kind,
                        issued_bulletins.c.period_start == period.start,
                    )  # fmt: skip
                )
                if exists.first() is not None:
                    continue
            document = await service.bulletin(runtime.uow(), county, period, trend_periods)
            async with runtime.uow() as uow:
                stored = await uow.session.execute(
                    pg_insert(issued_bulletins)
                    .values(county=county, kind=kind, period_start=period.start, label=period.label, document=document)
                    .on_conflict_do_nothing()
                    .returning(issued_bulletins.c.label)
                )
                if stored.first() is not None:
                    made.append((county, kind, period.label))
                await uow.commit()
    for county, kind, label in made:
        log.info("issued the %s bulletin %s of %s", kind, label, county)
    return made


class BulletinSchedule:
    """Looks every ``check_seconds`` whether a bulletin is due (0: never; on demand only)."""

    def __init__(self, runtime: Runtime, now, check_seconds: float, trend_periods: int) -> None:  # noqa: ANN001
        self.runtime = runtime
        self.now = now  # the service's clock (movable in demos and tests)
        self.check_seconds = check_seconds
        self.trend_periods = trend_periods
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.check_seconds > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="bulletin-schedule")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _run(self) -> None:
        while True:
            # First wait: a service just started reads the topic it missed before it issues
            # anything from its facts.
            await asyncio.sleep(self.check_seconds)
            try:
                await issue_due(self.runtime, self.now(), self.trend_periods)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("issuing scheduled bulletins failed; trying again")
