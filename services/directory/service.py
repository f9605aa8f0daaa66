"""The directory's use cases: read the current version, change it, seed it.

A change is one transaction: read the current version, check the caller's ``If-Match``,
apply the edit (``domain``), validate the WHOLE resulting document, insert it as the next
version. The primary key on the version number makes two changes of the same version
impossible: the second gets 409 and nothing is half-written. Publishing follows the
commit (``publisher``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services.directory import domain, repository
from services.directory.publisher import SnapshotPublisher
from services.directory.settings import DirectorySettings
from shared.db import UnitOfWork
from shared.events import Actor
from shared.orgdata import OrgDirectory, load_org, parse_org
from shared.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed, Unavailable
from shared.problems import Problem
from shared.workdays import HolidayTable

log = logging.getLogger(__name__)

SEED_ACTOR = "seed"


@dataclass(frozen=True)
class Current:
    version: int
    document: dict[str, Any]
    org: OrgDirectory
    changed_by: str
    changed_at: datetime
    summary: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


@dataclass(frozen=True)
class Changed:
    current: Current
    created: bool


class DirectoryContext:
    """What the running service holds: settings, the publisher, the parsed current version."""

    def __init__(self, settings: DirectorySettings) -> None:
        self.settings = settings
        # Made at start-up (it needs the runtime's unit of work).
        self.publisher: SnapshotPublisher | None = None
        # Parsing the document takes a few milliseconds: keep the last one, keyed by version
        # (versions never change, so the cache is right whichever replica wrote it).
        self._parsed: tuple[int, OrgDirectory] | None = None

    def org_of(self, version: int, document: dict[str, Any]) -> OrgDirectory:
        if self._parsed is not None and self._parsed[0] == version:
            return self._parsed[1]
        org = parse_org(document, f"org version {version}")
        self.remember(version, org)
        return org

    def remember(self, version: int, org: OrgDirectory) -> None:
        # Only move forward: an old version read by GET /org/versions/{n} must not evict the current one.
        if self._parsed is None or version >= self._parsed[0]:
            self._parsed = (version, org)


def _current(ctx: DirectoryContext, row: Any) -> Current:
    return Current(
        version=row.version,
        document=row.document,
        org=ctx.org_of(row.version, row.document),
        changed_by=row.changed_by,
        changed_at=row.changed_at,
        summary=row.summary,
    )


async def seed(ctx: DirectoryContext, uow: UnitOfWork, path: Path) -> int:
    """Load the seed file as version 1 unless the directory has versions already."""
    async with uow:
        newest = await repository.latest_number(uow.session)
        if newest is not None:
            return newest
        org = load_org(path)  # a bad seed stops the service with every problem named
        _, document = domain.validate(domain.canonical(org), 1)
        await repository.insert_version(
            uow.session, version=1, document=document, changed_by=SEED_ACTOR, summary=f"seed: {path.name}"
        )  # a replica starting at the same moment may have written it: ON CONFLICT, same seed
        await uow.commit()
    log.info("org directory seeded from %s as version 1", path)
    return 1


async def current(ctx: DirectoryContext, uow: UnitOfWork) -> Current:
    async with uow:
        row = await repository.latest(uow.session)
    if row is None:  # seeded at start-up, so only if someone emptied the table by hand
        raise Unavailable("the organisation directory has no version yet", code="directory-empty")
    return _current(ctx, row)


async def version(ctx: DirectoryContext, uow: UnitOfWork, number: int) -> Current:
    async with uow:
        row = await repository.get_version(uow.session, number)
    if row is None:
        raise NotFound(f"no org directory version {number}", code="no-such-version", version=number)
    return _current(ctx, row)


async def history(uow: UnitOfWork, *, before: int | None, limit: int) -> list[Any]:
    async with uow:
        return await repository.list_versions(uow.session, before=before, limit=limit)


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: 7``, ``"7"`` or ``W/"7"`` → 7; absent or ``*`` → None (no precondition)."""
    if value is None or value.strip() in ("", "*"):
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise Problem(400, f"If-Match must be a directory version number, got {value!r}", slug="bad-if-match")
    return int(text)


async def change(
    ctx: DirectoryContext,
    uow: UnitOfWork,
    actor: Actor,
    if_match: str | None,
    edit: Callable[[dict[str, Any]], domain.Edit],
) -> Changed:
    if not domain.may_change(actor.role):
        allowed = ", ".join(sorted(r.value for r in domain.EDITOR_ROLES))
        raise Forbidden(
            f"a {actor.role.value} may read the directory but not change it; changes are made by {allowed}",
            code="directory-read-only", role=actor.role.value, allowed_roles=sorted(r.value for r in domain.EDITOR_ROLES),
        )
    expected = parse_if_match(if_match)
    async with uow:
        row = await repository.latest(uow.session)
        if row is None:
            raise Unavailable("the organisation directory has no version yet", code="directory-empty")
        if expected is not None and expected != row.version:
            raise PreconditionFailed(
                f"the directory is at version {row.version}, not {expected}: read it again and retry",
                current_version=row.version, expected_version=expected,
            )
        try:
            result = edit(row.document)
        except domain.Missing as exc:
            raise NotFound(str(exc), code="not-in-directory") from None
        except domain.Blocked as exc:
            raise Conflict(
                str(exc), code="unit-in-use", unit=exc.code,
                children=exc.children, users=exc.users, catalogue_entries=exc.catalogue,
            ) from None
        new_version = row.version + 1
        try:
            org, document = domain.validate(result.document, new_version)
        except domain.Inconsistent as exc:
            raise Invalid(
                "the change would leave the directory inconsistent: " + "; ".join(exc.problems), field=None,
                code="directory-inconsistent", problems=exc.problems, version=row.version,
            ) from None
        outside = domain.edit_problems(ctx.org_of(row.version, row.document), org, actor)
        if outside:
            raise Forbidden("you may change only your own part of the directory: " + "; ".join(outside),
                            code="outside-your-area", problems=outside, version=row.version)  # fmt: skip
        inserted = await repository.insert_version(
            uow.session, version=new_version, document=document, changed_by=actor.id, summary=result.summary
        )
        if inserted is None:
            raise Conflict(
                f"the directory was changed meanwhile (version {new_version} exists): read it again and retry",
                code="concurrent-change", current_version=new_version,
            )
        await uow.commit()
    ctx.publisher.nudge()
    log.info("org directory version %d by %s: %s", new_version, actor.id, result.summary)
    ctx.remember(new_version, org)
    return Changed(
        Current(new_version, document, org, actor.id, inserted.changed_at, result.summary), created=result.created
    )


# --------------------------------------------------------------------- holiday tables


async def load_holiday_table(ctx: DirectoryContext, uow: UnitOfWork, table: HolidayTable, loaded_by: str) -> Any:
    """Store a year's schedule (replacing the year's previous one) and publish it on the topic
    holiday-tables after the commit: every service that counts working days follows it
    (``shared.holidays``), and the owner of each open deadline moves it."""
    async with uow:
        row = await repository.put_holiday_table(uow.session, table, loaded_by)
        await uow.commit()
    ctx.publisher.nudge()
    log.info("holiday table %d loaded by %s", table.year, loaded_by)
    return row


async def holiday_table(uow: UnitOfWork, year: int) -> Any:
    async with uow:
        return await repository.get_holiday_table(uow.session, year)
