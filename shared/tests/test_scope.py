"""The org-scope rules (对象级授权) on the demo organisation."""

from __future__ import annotations

import pytest

from shared.events import Actor, Role
from shared.orgdata import load_org
from shared.errors import Forbidden
from shared.scope import CaseScope, area_of, covers, may_see_case, may_see_unit, people_problem, require_role, units_below

ORG = load_org()
# A case in 城关镇 城中社区 第一网格, dispatched to 住建局.
STREETLAMP = CaseScope(places=("LB-XC", "LB-XC-CG", "LB-XC-CG-CZ", "LB-XC-CG-CZ-G01"), units=frozenset({"LB-XC-ZJJ"}))


def actor(role: Role, unit: str | None) -> Actor:
    return Actor(id=f"u-{role.value}", role=role, org_unit=unit)


@pytest.mark.parametrize(
    ("role", "unit", "sees"),
    [
        (Role.township_staff, "LB-XC-CG", True),  # its own township
        (Role.township_head, "LB-WX-TW", False),  # a township of another county (通挽镇, 武宣县)
        (Role.village_staff, "LB-XC-CG-CZ", True),
        (Role.village_staff, "LB-XC-CG-CX", False),  # another village of the same township
        (Role.grid_worker, "LB-XC-CG-CZ-G01", True),
        (Role.grid_worker, "LB-XC-CG-CZ-G02", True),  # the village's other grid: a grid worker sees its village's cases
        (Role.grid_worker, "LB-XC-CG-CX-G01", False),  # a grid of another village
        (Role.dept_clerk, "LB-XC-ZJJ", True),  # dispatched to it
        (Role.dept_head, "LB-XC-JTJ", False),  # a department it was not sent to
        (Role.centre_dispatcher, "LB-XC-ZZZX", True),  # the county's centre
        (Role.centre_supervisor, "LB-XB-ZZZX", False),  # another county's centre
        (Role.centre_dispatcher, "LB-ZZZX", True),  # the city's centre serves the city
        (Role.auditor, None, True),
        (Role.ops, None, False),
        (Role.citizen, None, False),
        (Role.township_staff, None, False),  # staff without a unit see nothing
        (Role.township_staff, "NO-SUCH-UNIT", False),
    ],
)
def test_who_sees_the_streetlamp_case(role: Role, unit: str | None, sees: bool) -> None:
    assert may_see_case(ORG, actor(role, unit), STREETLAMP) is sees


def test_a_called_department_sees_the_township_case_it_was_called_to() -> None:
    guardrail = CaseScope(places=("LB-WX", "LB-WX-TW", "LB-WX-TW-JL", None), units=frozenset({"LB-WX-TW"}))
    jtj = actor(Role.dept_clerk, "LB-WX-JTJ")
    assert not may_see_case(ORG, jtj, guardrail)
    called = CaseScope(places=guardrail.places, units=guardrail.units | {"LB-WX-JTJ"})
    assert may_see_case(ORG, jtj, called)


def test_an_unplaced_appeal_is_every_centres_to_triage() -> None:
    unplaced = CaseScope(places=(None, None, None, None))
    assert may_see_case(ORG, actor(Role.centre_dispatcher, "LB-XC-ZZZX"), unplaced)
    assert not may_see_case(ORG, actor(Role.township_staff, "LB-XC-CG"), unplaced)
    assert not may_see_case(ORG, actor(Role.dept_clerk, "LB-XC-ZJJ"), unplaced)
    assert not may_see_case(ORG, actor(Role.centre_dispatcher, None), unplaced)


def test_area_and_cover() -> None:
    assert area_of(ORG, actor(Role.centre_dispatcher, "LB-XC-ZZZX")) == "LB-XC"
    # township- and village-level 综治中心 serve their township and their village
    assert area_of(ORG, actor(Role.centre_dispatcher, "LB-WX-TW-ZZZX")) == "LB-WX-TW"
    assert area_of(ORG, actor(Role.centre_supervisor, "LB-WX-TW-JL-ZZZX")) == "LB-WX-TW-JL"
    assert area_of(ORG, actor(Role.grid_worker, "LB-XC-CG-CZ-G01")) == "LB-XC-CG-CZ-G01"
    assert covers(ORG, "LB-XC", "LB-XC-CG-CZ-G01")
    assert not covers(ORG, "LB-XC-CG-CZ-G01", "LB-XC")  # a grid does not cover its county
    assert not covers(ORG, "LB-XC", None)


def test_unit_queues_are_seen_from_the_unit_and_above() -> None:
    assert may_see_unit(ORG, actor(Role.dept_clerk, "LB-XC-ZJJ"), "LB-XC-ZJJ")
    assert not may_see_unit(ORG, actor(Role.dept_clerk, "LB-XC-ZJJ"), "LB-XC-JTJ")
    assert may_see_unit(ORG, actor(Role.centre_supervisor, "LB-XC-ZZZX"), "LB-XC-JTJ")
    assert not may_see_unit(ORG, actor(Role.centre_supervisor, "LB-XB-ZZZX"), "LB-XC-JTJ")
    assert may_see_unit(ORG, actor(Role.township_head, "LB-XC-CG"), "LB-XC-CG-CZ-G01")
    assert may_see_unit(ORG, actor(Role.auditor, None), "LB-XC-JTJ")
    assert not may_see_unit(ORG, actor(Role.citizen, None), "LB-XC-JTJ")


def test_units_below_a_township() -> None:
    below = units_below(ORG, "LB-XC-CG")
    assert "LB-XC-CG" in below and "LB-XC-CG-CZ-G02" in below and "LB-WX-TW" not in below
    # the township, its 综治中心, four villages with two grids each, and 城中社区's own centre
    assert len(below) == 1 + 1 + 4 + 8 + 1 and {"LB-XC-CG-ZZZX", "LB-XC-CG-CZ-ZZZX"} <= set(below)


def test_require_role_names_who_may() -> None:
    with pytest.raises(Forbidden) as refused:
        require_role(actor(Role.dept_clerk, "LB-XC-ZJJ"), [Role.centre_supervisor], "approve an extension")
    assert refused.value.code == "role-not-allowed" and "centre_supervisor" in refused.value.detail
    require_role(actor(Role.centre_supervisor, "LB-XC-ZZZX"), [Role.centre_supervisor], "approve an extension")


def test_list_scope_per_role() -> None:
    from shared.scope import list_scope

    county = list_scope(ORG, actor(Role.centre_dispatcher, "LB-XC-ZZZX"))
    places = dict(county.places)
    assert places["county"] == ("LB-XC",) and "LB-XC-CG" in places["township"] and "LB-XC-ZJJ" in county.units
    assert "LB-XC-CG-CZ" in places["village"] and all(code.startswith("LB-XC-") for code in places["grid"])
    township = list_scope(ORG, actor(Role.township_staff, "LB-WX-TW"))
    assert county.unplaced
    assert dict(township.places)["township"] == ("LB-WX-TW",) and "county" not in dict(township.places)
    assert "LB-XC-ZJJ" not in township.units and not township.unplaced
    department = list_scope(ORG, actor(Role.dept_clerk, "LB-XC-ZJJ"))
    assert department.places == () and department.units == ("LB-XC-ZJJ",)
    city = list_scope(ORG, actor(Role.centre_supervisor, "LB-ZZZX"))
    assert set(dict(city.places)["county"]) == {"LB-XC", "LB-XB", "LB-WX", "LB-XZ"}
    grid = list_scope(ORG, actor(Role.grid_worker, "LB-WX-TW-JL-G02"))  # its village's cases, every grid's
    places = dict(grid.places)
    assert places["village"] == ("LB-WX-TW-JL",) and "LB-WX-TW-JL-G01" in places["grid"] and not grid.unplaced
    assert not any(code.startswith("LB-WX-TW-DT") for code in places["grid"])  # not another village's grids
    assert list_scope(ORG, actor(Role.auditor, None)).everything
    assert list_scope(ORG, actor(Role.ops, None)) is None
    assert list_scope(ORG, actor(Role.citizen, None)) is None


@pytest.mark.parametrize(
    ("role", "unit", "target", "may"),
    [
        (Role.dept_head, "LB-XC-ZJJ", "LB-XC-ZJJ", True),  # the unit's head
        (Role.dept_clerk, "LB-XC-ZJJ", "LB-XC-ZJJ", False),  # a peer
        (Role.dept_head, "LB-XC-JTJ", "LB-XC-ZJJ", False),  # another unit's head
        (Role.township_head, "LB-XC-CG", "LB-XC-CG", True),
        (Role.township_head, "LB-XC-CG", "LB-XC-CG-CZ", True),  # a village of its township
        (Role.township_staff, "LB-XC-CG", "LB-XC-CG", False),
        (Role.village_staff, "LB-XC-CG-CZ", "LB-XC-CG-CZ", False),
        (Role.township_head, "LB-XC-CG", "LB-XC-ZJJ", False),
        (Role.centre_supervisor, "LB-XC-ZZZX", "LB-XC-ZJJ", True),  # the county's centre
        (Role.centre_dispatcher, "LB-ZZZX", "LB-XC-CG", True),  # the city's centre
        (Role.centre_supervisor, "LB-XC-CG-ZZZX", "LB-XC-ZJJ", False),  # a township's centre: not above a department
        (Role.centre_supervisor, "LB-WX-ZZZX", "LB-XC-ZJJ", False),  # another county's centre
        (Role.auditor, None, "LB-XC-ZJJ", True),
        (Role.ops, None, "LB-XC-ZJJ", False),
        (Role.citizen, None, "LB-XC-ZJJ", False),
    ],
)
def test_who_reads_a_units_people(role, unit, target, may):
    """个人绩效: the unit's head and the centres above it, never peers nor other units."""
    assert (people_problem(ORG, actor(role, unit), target) is None) is may
