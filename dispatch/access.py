"""Who may read a dispatch order (交办单) and what each person may do to it.

One rule for both sides of the API: the routes that act refuse what ``may_perform`` refuses,
and the ``allowed_actions`` an order's reader is shown are the actions of its state that
``may_perform`` grants that reader — so a list can never offer what the route would refuse.
Pure functions over the org directory (``shared.scope``), the actor, the order row and the
case row (``township``, and where known ``county`` / ``village`` / ``grid``).

Reading an order (``may_read_order``):

- the unit the order is for (or a unit above it) — a department sees only its own orders;
- the township the case belongs to, which verifies, closes and rates it (核验、销号): every
  order of the case, with the answer, the survey (现场勘查), the work plan, progress and
  extensions in view;
- the township (or centre) that opened an order, e.g. by calling the county (乡呼县应);
- the command centre (综治中心) serving the case's area: every order of its cases;
- the case's first-responsible unit (首问负责制): it answers for getting the case done
  whoever handles it, so it follows every order of the case;
- the village staff and grid workers of the village the case is in (`shared.scope.case_area_of`): every order of it;
- the auditor: everything. Anyone else gets a 404, as if the order did not exist.

The village level (村级, "村级范围能解决的,由各村积极认领…及时上报镇级"): a case located in a
village goes to that village first (``first_holder``). The village claims it (认领, its
签收) and handles it with its own order, or reports it up (上报) to its township with a
reason — no 退单 to the centre; the township may pass it down (下派) again, with a reason.
Claiming and reporting up are the village's own acts (its staff, its 综治中心), passing down
the township's own (its staff, its 综治中心): not of a unit above, which would be the one
deciding for the other.
"""

from __future__ import annotations

from typing import Any

from dispatch import domain
from dispatch.domain import Action, OrderState
from shared.events import Actor, Role
from shared.orgdata import OrgDirectory
from shared.scope import (CENTRE_ROLES, DEPARTMENT_ROLES, PLACE_ROLES, READ_ONLY_ROLES, STAFF_ROLES, CaseScope, area_of, covers,
                          may_see_case, may_see_unit)  # fmt: skip

#: What the unit an order is for does with it (or a unit above it, or its centre, for it).
UNIT_ACTIONS = frozenset({Action.sign, Action.return_order, Action.survey, Action.file_plan, Action.report_progress,
                          Action.request_extension, Action.resolve})  # fmt: skip
#: The command centre's decisions on an order of a unit it serves.
CENTRE_ACTIONS = frozenset({Action.review_return, Action.decide_extension})
#: What a village does with an order for it instead of signing and returning it.
VILLAGE_ACTIONS = frozenset({Action.claim, Action.report_up})
#: Signing and returning: every unit's but a village's (it claims or reports up instead).
NOT_FOR_VILLAGES = frozenset({Action.sign, Action.return_order})
#: Who speaks for a village or a township as itself: its staff and its own 综治中心.
OWN_ROLES = {"village": frozenset({Role.village_staff}), "township": frozenset({Role.township_staff, Role.township_head})}


def kind_of(org: OrgDirectory, unit: str | None) -> str | None:
    return org.unit(unit).kind if unit and org.has_unit(unit) else None


def acts_as(org: OrgDirectory, actor: Actor, unit: str) -> bool:
    """Whether ``actor`` speaks for the village or township ``unit`` itself: its own staff, or
    the 综治中心 serving exactly it (not a unit above, not the auditor)."""
    kind = kind_of(org, unit)
    if kind not in OWN_ROLES or actor.role in READ_ONLY_ROLES:
        return False
    if actor.role in OWN_ROLES[kind]:
        return actor.org_unit == unit
    return actor.role in CENTRE_ROLES and area_of(org, actor) == unit


def first_holder(org: OrgDirectory, owner: str | None, village: str | None) -> str | None:
    """Who holds a case first: the village it is located in when the catalogue gives the
    matter to that village's township (属地: 村级能解决的由各村认领); else the owner itself."""
    if owner and kind_of(org, village) == "village" and org.unit(village).parent == owner and kind_of(org, owner) == "township":
        return village
    return owner


def pass_down_problem(org: OrgDirectory, township: str, village: str | None) -> str | None:
    """Why ``village`` cannot be given a township's order passed down (None: it can)."""
    if village is None:
        return "name the village to pass it down to (the case is located in none)"
    if kind_of(org, village) != "village" or org.unit(village).parent != township:
        return f"{village} is not a village of {township}"
    return None


def may_act_for(org: OrgDirectory, actor: Actor, unit: str) -> bool:
    """The unit itself, a unit above it, or the command centre serving it (shared.scope);
    never the auditor, who reads and changes nothing."""
    return actor.role not in READ_ONLY_ROLES and may_see_unit(org, actor, unit)


def in_my_area(org: OrgDirectory, actor: Actor, case: Any) -> bool:
    """The case's own township — the one that verifies, closes and publishes it — or the
    centre serving it (a case with no township yet is the centre's to dispatch). A case in a
    county but no township (a department's task item) is its county's centre's alone; one
    with no place at all any centre's."""
    if actor.role in CENTRE_ROLES:
        return may_see_case(org, actor, CaseScope(places=(getattr(case, "county", None), case.township)))
    return actor.role in PLACE_ROLES and actor.org_unit is not None and actor.org_unit == case.township


def may_verify(org: OrgDirectory, actor: Actor, case: Any) -> bool:
    """核验 (and with it 销号、公示): the case's township, or the centre serving it."""
    return actor.role not in READ_ONLY_ROLES and case is not None and in_my_area(org, actor, case)


def opened_by(order: Any) -> str | None:
    """The unit of whoever opened the order (its first history entry): the calling township
    for an order of 乡呼县应 / 吹哨报到, the centre for one dispatched by hand, None when the
    catalogue dispatched it."""
    first = order.history[0] if order.history else None
    return first.get("unit") if first and first.get("action") == "dispatch" else None


def is_first_unit(org: OrgDirectory, actor: Actor, case: Any) -> bool:
    """首问负责制: the actor works in the case's first-responsible unit (or a unit above it,
    or the centre serving it) — that unit reads the case and every order of it."""
    first = getattr(case, "first_unit", None) if case is not None else None
    return first is not None and may_see_unit(org, actor, first)


def case_places(case: Any) -> tuple[str | None, ...]:
    return tuple(getattr(case, column, None) for column in ("county", "township", "village", "grid")) if case is not None else ()


def may_read_order(org: OrgDirectory, actor: Actor, order: Any, case: Any) -> bool:
    """Whether ``actor`` may read ``order`` of ``case`` (the module docstring says who)."""
    if actor.role is Role.auditor:
        return True
    if actor.role not in STAFF_ROLES:
        return False
    if may_see_unit(org, actor, order.unit):
        return True  # its own order (or one of a unit under it)
    if is_first_unit(org, actor, case):
        return True
    if actor.role in DEPARTMENT_ROLES:
        return False  # never another unit's order, even of the same case
    if actor.role in CENTRE_ROLES:
        return may_see_case(org, actor, CaseScope(places=case_places(case), units=frozenset({order.unit})))
    if case is not None and in_my_area(org, actor, case):
        return True  # the township that verifies sees every order of its case
    if case is not None and actor.role in PLACE_ROLES and may_see_case(org, actor, CaseScope(places=case_places(case))):
        return True  # the village the case is in (its staff, its grids' workers) follows it, also once reported up
    return actor.org_unit is not None and opened_by(order) == actor.org_unit


def may_perform(org: OrgDirectory, actor: Actor, action: Action, order: Any, case: Any) -> bool:
    """Whether ``actor`` may take ``action`` on ``order`` (whatever its state: the state
    machine in ``dispatch.domain`` decides when)."""
    if actor.role in READ_ONLY_ROLES:
        return False
    village_order = kind_of(org, order.unit) == "village"
    if action in VILLAGE_ACTIONS:
        return village_order and acts_as(org, actor, order.unit)
    if action is Action.pass_down:
        return kind_of(org, order.unit) == "township" and order.role == "sole" and acts_as(org, actor, order.unit)
    if action in NOT_FOR_VILLAGES and village_order:
        return False
    if action in UNIT_ACTIONS:
        return may_act_for(org, actor, order.unit)
    if action in CENTRE_ACTIONS:
        return actor.role in CENTRE_ROLES and may_act_for(org, actor, order.unit)
    if action is Action.verify:
        return may_verify(org, actor, case)
    return False  # close and reopen follow verification and ratings; no person asks for them


def allowed_actions(org: OrgDirectory, actor: Actor, order: Any, case: Any, *, pending_extension: bool = False) -> list[str]:
    """The actions ``actor`` may take on ``order`` now: those its state allows that
    ``may_perform`` grants (an extension is decided only while one is pending)."""
    state = OrderState(order.state)
    return [
        name for name in domain.allowed_actions(state)
        if may_perform(org, actor, Action(name), order, case) and (name != Action.decide_extension or pending_extension)
    ]  # fmt: skip


def case_county(org: OrgDirectory, case: Any) -> str | None:
    """The county a case belongs to: its own, else its township's."""
    for code in (getattr(case, "county", None), getattr(case, "township", None)):
        if code and org.has_unit(code):
            return org.county_of(code)
    return None


def catalogue_units(org: OrgDirectory, case: Any) -> frozenset[str]:
    """Every unit the dispatch catalogue (派单目录) names as owner of the case's subject class
    somewhere that covers the case's place (whatever its keywords): those a township may
    call besides its county's departments."""
    area = next((code for code in case_places(case)[::-1] if code and org.has_unit(code)), None)
    if area is None or not getattr(case, "subject_class", None):
        return frozenset()
    places = {area, *(u.code for u in org.ancestors(area)), "*"}
    return frozenset(
        entry.owner for entry in org.catalogue
        if entry.subject_class in (case.subject_class, "*") and entry.area in places and org.has_unit(entry.owner)
    )  # fmt: skip


def may_call(org: OrgDirectory, case: Any, unit: str) -> bool:
    """乡呼县应 / 吹哨报到: a township calls the departments of its own county (县直部门), and
    the units the catalogue names for the matter; never a unit of another county."""
    if not org.has_unit(unit):
        return False
    named = org.unit(unit)
    county = case_county(org, case)
    return (named.kind == "department" and county is not None and org.county_of(unit) == county) or unit in catalogue_units(org, case)


# --------------------------------------------------------------------------- 乡呼县应 and 吹哨报到

#: The case-level actions an ``allowed_actions`` of a case may list.
CALL, WHISTLE = "call", "whistle"
#: An order its unit still holds: not yet answered, returned or handed over.
OPEN_STATES = ("dispatched", "signed", "in_progress")


def calling_unit(org: OrgDirectory, actor: Actor, case: Any) -> str | None:
    """The unit that calls when ``actor`` calls the county on ``case`` (None: it may not).

    The case's township — its staff or the centre serving it — calls county departments
    (乡呼县应) or blows the whistle (吹哨报到). From below (网格吹哨、部门报到) the village staff
    of the case's village and the grid worker of the case's grid blow the whistle too: a grid
    worker only for its own grid, though it reads its whole village's cases."""
    if actor.role in READ_ONLY_ROLES or case is None or actor.org_unit is None:
        return None
    if in_my_area(org, actor, case):
        return case.township or actor.org_unit
    if actor.role is Role.village_staff and case.village and actor.org_unit == case.village:
        return case.village
    if actor.role is Role.grid_worker and case.grid and actor.org_unit == case.grid:
        return case.grid
    return None


def holding_unit(org: OrgDirectory, caller: str) -> str:
    """The unit whose own order a call by ``caller`` takes over: a grid's village (a grid
    holds no order of its own), else the caller."""
    if kind_of(org, caller) == "grid":
        parent = org.unit(caller).parent
        if kind_of(org, parent) == "village":
            return parent  # type: ignore[return-value]
    return caller


def call_problem(org: OrgDirectory, case: Any, caller: str, orders: list[Any], *, lead: bool) -> tuple[str, str, dict[str, Any]] | None:
    """Why ``caller`` cannot call on ``case`` now, as (code, message, facts) for a 409/422, or
    None. The caller's own open order ends with the call; a village or township that holds
    the case otherwise blocks it: the township calls the county for what the village has
    reported up (上报), not over its head, and a village does not whistle over the township
    that took the matter from it."""
    if not lead and kind_of(org, caller) != "township":
        return ("lead-required", "a village or grid blows the whistle naming the lead department (网格吹哨、部门报到); "
                "calling the county without a lead (乡呼县应) is the township's", {"field": "lead_unit"})  # fmt: skip
    if case.stage == "closed" or case.rejected or case.merged_into:
        return ("invalid-state", f"case {case.case_id} is {case.stage}; nothing to call for", {"state": case.stage})
    own = holding_unit(org, caller)
    for order in orders:
        kind = kind_of(org, order.unit)
        if kind in ("village", "township") and order.unit != own and order.redo_round == case.redo_round and order.state in OPEN_STATES:
            return (f"{kind}-holds", f"{order.unit} holds case {case.case_id}: "
                    + ("the village reports it up (上报) before its township calls the county" if kind == "village"
                       else "the township handles it now and calls the county itself"),
                    {"state": case.stage, kind: order.unit})  # fmt: skip
    return None


def case_actions(org: OrgDirectory, actor: Actor, case: Any, orders: list[Any]) -> list[str]:
    """What ``actor`` may do to ``case`` itself now: ``call`` the county (乡呼县应, the
    township's) and ``whistle`` (吹哨报到; also a village's or grid's) — exactly what
    ``POST /cases/{id}/call`` would accept from it."""
    caller = calling_unit(org, actor, case)
    if caller is None:
        return []
    return [name for name, lead in ((CALL, False), (WHISTLE, True)) if call_problem(org, case, caller, orders, lead=lead) is None]


def may_dispatch_to(org: OrgDirectory, actor: Actor, unit: str) -> bool:
    """A centre dispatches by hand to units of the area it serves (its county's townships,
    villages and departments; the city centre's, the whole city)."""
    return actor.role in CENTRE_ROLES and covers(org, area_of(org, actor), unit)
