"""The village level's rules, pure (``dispatch.access``): who holds a case first, who speaks
for a village or a township, where a township may pass a case down, who may call the county or
blow the whistle (网格吹哨、部门报到)."""

from __future__ import annotations

from types import SimpleNamespace

from dispatch.access import acts_as, call_problem, case_actions, calling_unit, first_holder, holding_unit, pass_down_problem
from shared.events import Actor, Role
from shared.orgdata import load_org

ORG = load_org()


def person(role: Role, unit: str) -> Actor:
    return Actor(id=f"{role.value}@{unit}", role=role, org_unit=unit)


def test_a_matter_the_catalogue_gives_the_township_is_its_villages_first():
    assert first_holder(ORG, "LB-WX-TW", "LB-WX-TW-JL") == "LB-WX-TW-JL"
    assert first_holder(ORG, "LB-WX-TW", None) == "LB-WX-TW", "placed in no village: the township"
    assert first_holder(ORG, "LB-XC-ZJJ", "LB-XC-CG-CD") == "LB-XC-ZJJ", "a department's matter stays the department's"
    assert first_holder(ORG, "LB-XC-CG", "LB-WX-TW-JL") == "LB-XC-CG", "a village of another township does not take it"
    assert first_holder(ORG, None, "LB-WX-TW-JL") is None


def test_only_the_village_itself_or_its_own_centre_speaks_for_it():
    village = "LB-WX-TW-JL"
    assert acts_as(ORG, person(Role.village_staff, village), village)
    assert acts_as(ORG, person(Role.centre_dispatcher, "LB-WX-TW-JL-ZZZX"), village)
    for other in (person(Role.village_staff, "LB-WX-TW-DT"), person(Role.township_staff, "LB-WX-TW"),
                  person(Role.centre_dispatcher, "LB-WX-TW-ZZZX"), person(Role.grid_worker, "LB-WX-TW-JL-G01"),
                  person(Role.auditor, village), person(Role.dept_clerk, village)):  # fmt: skip
        assert not acts_as(ORG, other, village), other
    assert acts_as(ORG, person(Role.township_head, "LB-WX-TW"), "LB-WX-TW")
    assert not acts_as(ORG, person(Role.village_staff, village), "LB-WX-TW")
    assert not acts_as(ORG, person(Role.dept_clerk, "LB-WX-JTJ"), "LB-WX-JTJ"), "a department is neither"


def test_a_township_passes_down_only_to_its_own_villages():
    assert pass_down_problem(ORG, "LB-WX-TW", "LB-WX-TW-JL") is None
    assert pass_down_problem(ORG, "LB-WX-TW", "LB-XC-CG-CZ") == "LB-XC-CG-CZ is not a village of LB-WX-TW"
    assert pass_down_problem(ORG, "LB-WX-TW", "LB-WX-TW-JL-G01") is not None, "a grid is not a village"
    assert pass_down_problem(ORG, "LB-WX-TW", None) is not None


# A case in 江龙村's first grid, and its orders (unit, state), as dispatch's rows give them.
def jianglong_case(**overrides) -> SimpleNamespace:
    values = dict(case_id="c1", county="LB-WX", township="LB-WX-TW", village="LB-WX-TW-JL", grid="LB-WX-TW-JL-G01",
                  stage="received", rejected=False, merged_into=None, redo_round=0)  # fmt: skip
    return SimpleNamespace(**{**values, **overrides})


def order(unit: str, state: str = "signed") -> SimpleNamespace:
    return SimpleNamespace(unit=unit, state=state, redo_round=0)


def test_the_grid_the_case_is_in_and_its_village_blow_the_whistle_the_township_calls():
    case = jianglong_case()
    assert calling_unit(ORG, person(Role.grid_worker, "LB-WX-TW-JL-G01"), case) == "LB-WX-TW-JL-G01"
    assert calling_unit(ORG, person(Role.village_staff, "LB-WX-TW-JL"), case) == "LB-WX-TW-JL"
    assert calling_unit(ORG, person(Role.township_staff, "LB-WX-TW"), case) == "LB-WX-TW"
    assert calling_unit(ORG, person(Role.centre_dispatcher, "LB-WX-ZZZX"), case) == "LB-WX-TW"
    for other in (person(Role.grid_worker, "LB-WX-TW-JL-G02"),  # reads the case, but it is not in its grid
                  person(Role.village_staff, "LB-WX-TW-DT"), person(Role.dept_clerk, "LB-WX-ZJJ"),
                  person(Role.auditor, "LB-WX-TW-JL")):  # fmt: skip
        assert calling_unit(ORG, other, case) is None, other
    assert holding_unit(ORG, "LB-WX-TW-JL-G01") == "LB-WX-TW-JL", "a grid's whistle takes over its village's order"
    assert holding_unit(ORG, "LB-WX-TW") == "LB-WX-TW"


def test_who_holds_the_case_decides_whether_a_call_may_be_made():
    case = jianglong_case()
    held_by_village = [order("LB-WX-TW-JL")]
    assert call_problem(ORG, case, "LB-WX-TW-JL-G01", held_by_village, lead=True) is None
    assert call_problem(ORG, case, "LB-WX-TW-JL-G01", held_by_village, lead=False)[0] == "lead-required"
    assert call_problem(ORG, case, "LB-WX-TW", held_by_village, lead=True)[0] == "village-holds"
    held_by_township = [order("LB-WX-TW-JL", "reassigned"), order("LB-WX-TW")]
    assert call_problem(ORG, case, "LB-WX-TW-JL", held_by_township, lead=True)[0] == "township-holds"
    assert call_problem(ORG, case, "LB-WX-TW", held_by_township, lead=False) is None
    assert call_problem(ORG, jianglong_case(stage="closed"), "LB-WX-TW", [], lead=True)[0] == "invalid-state"
    assert case_actions(ORG, person(Role.grid_worker, "LB-WX-TW-JL-G01"), case, held_by_village) == ["whistle"]
    assert case_actions(ORG, person(Role.township_head, "LB-WX-TW"), case, held_by_township) == ["call", "whistle"]
    assert case_actions(ORG, person(Role.township_head, "LB-WX-TW"), case, held_by_village) == []
