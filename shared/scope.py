"""Who may see what: the org-scope rules every service applies (对象级授权, issue #9).

Pure functions over the org directory and an ``Actor``; each service feeds them what it
knows of a case (its place in the org tree, the units given an order or called) and turns
a "no" into a 404 — never a 403 — so that ids of other units' cases cannot be probed.

The rules, from the issue:

- a township sees the cases in its own area, village staff their village's; a grid worker
  sees the cases of the village its grid is in ("村干部和网格员看本村的诉求": a grid belongs
  to its village, and its worker follows what the village handles, not only its own grid);
- a department sees the cases dispatched or called to it (or to a unit under it);
- a command centre (综治中心) sees every case of the area it serves: the county's centre
  the county, a township's centre the township, a village's centre the village;
- an appeal not yet placed anywhere (no township known, sent to no one) waits in the
  centre's manual-triage queue (人工分拨), so every centre sees it;
- the auditor reads everything and changes nothing; ops runs the machines and sees no
  case (and no personal data);
- a citizen sees their own appeals only (decided by the service that knows the phone).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.events import Actor, Role
from shared.orgdata import OrgDirectory
from shared.errors import Forbidden, NotFound

CENTRE_ROLES = frozenset({Role.centre_dispatcher, Role.centre_supervisor})
PLACE_ROLES = frozenset({Role.grid_worker, Role.village_staff, Role.township_staff, Role.township_head})
DEPARTMENT_ROLES = frozenset({Role.dept_clerk, Role.dept_head})
#: Everyone who works on cases inside the government, plus the auditor who reads them.
STAFF_ROLES = CENTRE_ROLES | PLACE_ROLES | DEPARTMENT_ROLES | {Role.auditor}
#: Roles that change nothing, wherever they are let in.
READ_ONLY_ROLES = frozenset({Role.auditor})
#: Staff who may call the citizen and so open the contact (intake's ``/appeals/{id}/contact``):
#: everyone who works on cases, but not the auditor, who reads who saw it instead.
CONTACT_ROLES = STAFF_ROLES - READ_ONLY_ROLES


def may_open_contact(actor: Actor | None) -> bool:
    """Whether this caller may open a citizen's contact. Whoever may not (the auditor, the
    public, anyone unsigned) is shown free text masked (``shared.privacy.redact_for_public``)."""
    return actor is not None and actor.role in CONTACT_ROLES


@dataclass(frozen=True)
class CaseScope:
    """Where a case sits in the org tree and who has been asked to handle it."""

    places: tuple[str | None, ...] = ()  # county, township, village, grid (any may be unknown)
    units: frozenset[str] = field(default_factory=frozenset)  # units given an order or called


def area_of(org: OrgDirectory, actor: Actor) -> str | None:
    """The org unit whose subtree an actor's role covers: a centre serves its parent (the
    county, township or village it belongs to), every other unit covers itself."""
    if actor.org_unit is None or not org.has_unit(actor.org_unit):
        return None
    unit = org.unit(actor.org_unit)
    return unit.parent if unit.kind == "centre" else unit.code


def covers(org: OrgDirectory, area: str | None, code: str | None) -> bool:
    """True when ``code`` is ``area`` or a unit below it."""
    if area is None or code is None or not org.has_unit(code):
        return False
    return code == area or any(u.code == area for u in org.ancestors(code))


def case_area_of(org: OrgDirectory, actor: Actor) -> str | None:
    """The org unit whose cases an actor sees (read and list): ``area_of``, except that a
    grid worker sees the cases of the village its grid is in (a grid directly under a
    township, in no village, keeps its own grid). Queues, clocks and rules stay ``area_of``."""
    area = area_of(org, actor)
    if actor.role is Role.grid_worker and area is not None:
        parent = org.unit(area).parent
        if parent is not None and org.has_unit(parent) and org.unit(parent).kind == "village":
            return parent
    return area


def may_see_case(org: OrgDirectory, actor: Actor, case: CaseScope) -> bool:
    if actor.role is Role.auditor:
        return True
    area = case_area_of(org, actor)
    if actor.role in CENTRE_ROLES and area is not None and not any(case.places) and not case.units:
        return True  # unplaced: the centre's to triage
    if actor.role in CENTRE_ROLES or actor.role in PLACE_ROLES:
        return any(covers(org, area, code) for code in (*case.places, *case.units))
    if actor.role in DEPARTMENT_ROLES:
        return any(covers(org, area, code) for code in case.units)
    return False


def may_see_unit(org: OrgDirectory, actor: Actor, unit: str) -> bool:
    """A unit's queues and clocks: the unit itself, a unit above it, the centre serving it,
    the auditor."""
    if actor.role is Role.auditor:
        return True
    if actor.role not in STAFF_ROLES:
        return False
    return covers(org, area_of(org, actor), unit)


#: The heads of a unit: they see its people's own figures (个人绩效), their staff do not.
HEAD_ROLES = frozenset({Role.township_head, Role.dept_head})


def people_problem(org: OrgDirectory, actor: Actor, unit: str) -> str | None:
    """Why this caller may not read the figures of a unit's handling people (None: it may).

    个人绩效和评价结果挂钩: a person's scores and rates are for the unit's head (a township's
    head also over its villages and grids) and the command centres serving the unit or
    above it, and the auditor; never for the person's peers (clerks, staff, grid workers),
    nor for any other unit, whatever its level."""
    if actor.role is Role.auditor:
        return None
    if actor.role not in HEAD_ROLES | CENTRE_ROLES:
        return f"a {actor.role.value} does not read people's figures: only the unit's head and the centres above it do"
    if not covers(org, area_of(org, actor), unit):
        return f"{unit} is not {actor.org_unit or 'your unit'} nor below the area it serves"
    return None


def rules_problem(org: OrgDirectory, actor: Actor, region: str | None) -> str | None:
    """Why this caller may not set rules for ``region`` (None: it may).

    Rules a service applies across an area — SLA policies, the holiday schedule, scoring
    weights and grid points — are set by ops (who runs the machines) or by a centre's
    supervisor for the area that centre serves: the city's supervisors city-wide (``region``
    None), a county centre's only for a region inside its county. Otherwise one county's
    supervisor would change every county's deadlines or rankings."""
    if actor.role is Role.ops:
        return None
    area = area_of(org, actor)
    if area is None:
        return f"{actor.org_unit or 'no unit'} serves no area in the directory"
    if region is None:
        if org.unit(area).kind == "city":
            return None
        return f"city-wide rules are set by the city's supervisors; {area}'s may set rules for a region in {area}"
    return None if covers(org, area, region) else f"{region} is not in {area}, the area your centre serves"


def require_rules_scope(org: OrgDirectory, actor: Actor, region: str | None, *, field: str | None = None) -> None:
    """403 ``outside-your-area`` (as for directory edits) when ``rules_problem`` says no."""
    problem = rules_problem(org, actor, region)
    if problem:
        extra = {"field": field} if field else {}
        raise Forbidden(f"you may set rules only for your own area: {problem}", code="outside-your-area", **extra)


def units_below(org: OrgDirectory, area: str) -> list[str]:
    """``area`` and every unit under it: the codes a list query may show to its staff."""
    out, todo = [], [area]
    while todo:
        code = todo.pop()
        out.append(code)
        todo.extend(child.code for child in org.children(code))
    return out


@dataclass(frozen=True)
class ListScope:
    """What a list query may return to a caller, as a service's SQL filter needs it: rows
    with a place in ``places`` — pairs of a place column (county / township / village / grid)
    and the codes of that level inside the caller's area — or that were sent to one of
    ``units``. ``everything`` for the auditor."""

    everything: bool = False
    places: tuple[tuple[str, tuple[str, ...]], ...] = ()
    units: tuple[str, ...] = ()
    unplaced: bool = False  # also rows placed nowhere yet (the centre's triage queue)


_PLACE_COLUMN = {"county": "county", "township": "township", "village": "village", "grid": "grid"}


def list_scope(org: OrgDirectory, actor: Actor) -> ListScope | None:
    """The caller's list filter, or None when its role sees no cases at all.

    A row is listed when any of its places lies in the caller's area — the rule of
    ``may_see_case`` (``covers`` on every place), not one column: a case placed only as far as
    a grid (a township and a grid, no village) is still its village's, and one given only a
    township is still its county's."""
    if actor.role is Role.auditor:
        return ListScope(everything=True)
    area = case_area_of(org, actor)
    if area is None or actor.role not in STAFF_ROLES:
        return None
    below = tuple(units_below(org, area))
    if actor.role in DEPARTMENT_ROLES:
        return ListScope(units=below)
    by_column: dict[str, list[str]] = {}
    for code in below:
        column = _PLACE_COLUMN.get(org.unit(code).kind)
        if column is not None:
            by_column.setdefault(column, []).append(code)
    places = tuple((column, tuple(codes)) for column, codes in by_column.items())
    return ListScope(places=places, units=below, unplaced=actor.role in CENTRE_ROLES)


def require_role(actor: Actor, allowed: Iterable[Role], what: str) -> None:
    """403 naming the roles that may: for function-level refusals (a clerk approving an
    extension), where the resource itself is not secret."""
    allowed = tuple(allowed)
    if actor.role not in allowed:
        names = ", ".join(sorted(role.value for role in allowed))
        raise Forbidden(f"a {actor.role.value} may not {what}; allowed roles: {names}", code="role-not-allowed",
                        role=actor.role.value, allowed_roles=sorted(role.value for role in allowed))  # fmt: skip


def not_found_unless(allowed: bool, what: str) -> None:
    """NotFound for what the caller may not see: the same answer as for what does not exist."""
    if not allowed:
        raise NotFound(f"no {what}", code="not-found")


def placement_problem(
    org: OrgDirectory, area: str | None, township: str, village: str | None = None, grid: str | None = None
) -> tuple[str, str] | None:
    """Why a place cannot be given to a case by someone whose area is ``area`` (manual
    triage, 人工分拨), as ``(field, message)``, or None: the township must be a township of
    the directory inside that area, the village one of its villages, the grid one of the
    village's grids (or, without a village, of the township's)."""
    if not org.has_unit(township) or org.unit(township).kind != "township":
        return "township", f"{township} is not a township of the organisation directory"
    if not covers(org, area, township):
        return "township", f"{township} is outside the area your centre serves"
    if village is not None and (not org.has_unit(village) or org.unit(village).kind != "village" or org.unit(village).parent != township):
        return "village", f"{village} is not a village of {township}"
    if grid is not None:
        if not org.has_unit(grid) or org.unit(grid).kind != "grid":
            return "grid", f"{grid} is not a grid of the organisation directory"
        if (village is not None and org.unit(grid).parent != village) or org.township_of(grid) != township:
            return "grid", f"{grid} is not a grid of {village or township}"
    return None
