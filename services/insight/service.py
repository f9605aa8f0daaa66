"""Insight's context and service layer: the calendar, the thresholds, names for the sentences,
and the findings as the centre reads them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from services.insight.detect import Thresholds
from services.insight.models import findings
from services.insight.settings import InsightSettings
from shared.db import UnitOfWork
from shared.orgdata import OrgDirectory
from shared.holidays import HolidayFollower
from shared.workdays import PACKAGED_CALENDAR, WorkingCalendar


@dataclass
class InsightContext:
    settings: InsightSettings
    thresholds: Thresholds
    # The org directory as the service follows it (set at start-up); names the places and
    # units in a finding's sentence. Until it is set, codes stand for names.
    org: Callable[[], OrgDirectory] | None = None
    # The holiday tables the directory publishes, followed (ServiceSpec.follow_holidays, set at
    # start-up); until then the packaged calendar. Read per use: a table loaded moves it.
    holidays: HolidayFollower | None = None

    @property
    def calendar(self) -> WorkingCalendar:
        return self.holidays.calendar if self.holidays is not None else PACKAGED_CALENDAR

    @classmethod
    def from_settings(cls, settings: InsightSettings) -> InsightContext:
        return cls(settings, Thresholds(**{k: _number(k, v) for k, v in settings.thresholds.items()}))

    def names(self, codes: set[str]) -> dict[str, str]:
        if self.org is None:
            return {}
        org = self.org()
        return {code: org.unit(code).name for code in codes if org.has_unit(code)}

    def centre_of(self, county: str | None) -> str | None:
        """The command centre (指挥中心 / 综治中心) of a county: warned of every finding there."""
        if self.org is None or county is None:
            return None
        org = self.org()
        if not org.has_unit(county):
            return None
        return next((u.code for u in org.children(county) if u.kind == "centre"), None)

    def county_of(self, code: str) -> str | None:
        """The county of a place (a finding of an untriaged case has no region of its own)."""
        if self.org is None:
            return None
        org = self.org()
        return org.county_of(code) if org.has_unit(code) else None


def _number(name: str, value: float) -> float | int:
    """A threshold as the dataclass declares it: counts are whole numbers."""
    declared = Thresholds.__dataclass_fields__.get(name)
    if declared is None:
        raise ValueError(f"unknown threshold {name!r}; known: {', '.join(Thresholds.__dataclass_fields__)}")
    if declared.type == "int":
        if value != int(value):
            raise ValueError(f"threshold {name} must be a whole number")
        return int(value)
    return float(value)


async def get_finding(uow: UnitOfWork, finding_id: str) -> dict[str, Any] | None:
    async with uow:
        row = (await uow.session.execute(select(findings).where(findings.c.finding_id == finding_id))).mappings().first()
    return dict(row) if row is not None else None


async def list_findings(
    uow: UnitOfWork, *, county: str | None, township: str | None, unit: str | None, since: date | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first; narrowed to a county, a township or a unit (the caller's scope)."""
    query = select(findings).order_by(findings.c.detected_on.desc(), findings.c.finding_id).limit(limit)
    if county is not None:
        query = query.where(findings.c.county == county)
    if township is not None:
        query = query.where(findings.c.township == township)
    if unit is not None:
        query = query.where(findings.c.unit == unit)
    if since is not None:
        query = query.where(findings.c.detected_on >= since)
    async with uow:
        rows = (await uow.session.execute(query)).mappings().all()
    return [dict(row) for row in rows]
