"""The village level's rules, pure (``dispatch.access``): who holds a case first, who speaks
for a village or a township, where a township may pass a case down."""

from __future__ import annotations

from dispatch.access import acts_as, first_holder, pass_down_problem
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
