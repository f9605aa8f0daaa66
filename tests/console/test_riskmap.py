"""The risk page's schematic 民情地图 as pure functions: which places are drawn for whom, and
how findings light them."""

from __future__ import annotations

from services.console.riskmap import area_of_unit, open_warnings, risk_map, task_rows, task_units

UNITS = [
    {"code": "LB", "name": "来宾市", "kind": "city", "parent": None},
    {"code": "LB-XC", "name": "忻城县", "kind": "county", "parent": "LB"},
    {"code": "LB-XC-ZZZX", "name": "忻城县综治中心", "kind": "centre", "parent": "LB-XC"},
    {"code": "LB-XC-ZJJ", "name": "住建局", "kind": "department", "parent": "LB-XC"},
    {"code": "LB-XC-CG", "name": "城关镇", "kind": "township", "parent": "LB-XC"},
    {"code": "LB-XC-CG-CZ", "name": "城中社区", "kind": "village", "parent": "LB-XC-CG"},
    {"code": "LB-XC-CG-CZ-G01", "name": "城中一网格", "kind": "grid", "parent": "LB-XC-CG-CZ"},
    {"code": "LB-XC-CG-CD", "name": "城东社区", "kind": "village", "parent": "LB-XC-CG"},
    {"code": "LB-XC-HT", "name": "红渡镇", "kind": "township", "parent": "LB-XC"},
    {"code": "LB-XC-HT-A", "name": "甲村", "kind": "village", "parent": "LB-XC-HT"},
    {"code": "LB-WX", "name": "武宣县", "kind": "county", "parent": "LB"},
    {"code": "LB-WX-TW", "name": "通挽镇", "kind": "township", "parent": "LB-WX"},
    {"code": "LB-WX-TW-JL", "name": "江龙村", "kind": "village", "parent": "LB-WX-TW"},
]
BY_CODE = {u["code"]: u for u in UNITS}


def finding(fid: str, level: str, area: str, score: float, subject: str = "infrastructure") -> dict:
    return {"finding_id": fid, "level": level, "area": area, "score": score, "subject_class": subject}


def test_the_area_a_user_serves_is_the_centres_parent_or_the_unit_itself():
    assert area_of_unit(BY_CODE, "LB-XC-ZZZX", "LB-XC") == "LB-XC"
    assert area_of_unit(BY_CODE, "LB-XC-CG", "LB-XC") == "LB-XC-CG"
    assert area_of_unit(BY_CODE, None, "LB-XC") == "LB-XC"  # the auditor without a unit: the console's county
    assert area_of_unit(BY_CODE, "LB-NOWHERE", "LB-XC") == "LB-XC"


def test_a_centre_sees_its_countys_townships_and_villages_lit_by_the_findings_inside():
    found = [finding("f1", "grid", "LB-XC-CG-CZ-G01", 2.0), finding("f2", "village", "LB-XC-CG-CZ", 4.0),
             finding("f3", "village", "LB-XC-CG-CD", 1.5), finding("f4", "unit", "LB-XC-ZJJ", 1.8)]  # fmt: skip
    doc = risk_map(UNITS, found, "LB-XC")
    assert doc["root_name"] == "忻城县"
    assert [t["code"] for t in doc["townships"]] == ["LB-XC-CG", "LB-XC-HT"]  # not 武宣县's
    cg, ht = doc["townships"]
    assert (cg["score"], cg["findings"], cg["heat"]) == (7.5, 3, 1.0) and (ht["score"], ht["heat"]) == (0.0, 0.0)
    villages = {v["code"]: v for v in cg["villages"]}
    assert (villages["LB-XC-CG-CZ"]["score"], villages["LB-XC-CG-CZ"]["heat"]) == (6.0, 1.0)  # the grid's finding counts in its village
    assert villages["LB-XC-CG-CZ"]["finding_ids"] == ["f1", "f2"]
    assert villages["LB-XC-CG-CD"]["heat"] == 0.25
    assert doc["names"]["LB-XC-CG-CZ-G01"] == "城中一网格" and doc["names"]["LB-XC-ZJJ"] == "住建局"
    assert doc["units"] == [{"code": "LB-XC-ZJJ", "name": "住建局", "finding_id": "f4", "score": 1.8, "subject_class": "infrastructure"}]


def test_a_township_sees_its_own_a_village_its_own_inside_its_township_a_department_no_places():
    assert [t["code"] for t in risk_map(UNITS, [], "LB-XC-CG")["townships"]] == ["LB-XC-CG"]
    [township] = risk_map(UNITS, [], "LB-XC-CG-CD")["townships"]
    assert township["code"] == "LB-XC-CG" and [v["code"] for v in township["villages"]] == ["LB-XC-CG-CD"]
    assert risk_map(UNITS, [], "LB-XC-ZJJ")["townships"] == []


def test_a_quiet_map_is_dark():
    doc = risk_map(UNITS, [], "LB")
    assert len(doc["townships"]) == 3 and all(t["heat"] == 0 and t["score"] == 0 for t in doc["townships"])


def test_the_open_warnings_carded_first_each_with_its_unit_name_and_the_deadline_it_runs_against():
    units = [{"code": "LB-XC-ZJJ", "name": "忻城县住建局"}]

    def warning(wid: str, state: str, card: str | None = None) -> dict:
        return {"warning_id": wid, "unit": "LB-XC-ZJJ", "state": state, "card": card,
                "acknowledge_due_at": f"2026-11-1{wid}T01:00:00Z", "handle_due_at": f"2026-11-2{wid}T01:00:00Z"}  # fmt: skip

    rows = open_warnings([warning("1", "open"), warning("2", "acknowledged", "red"), warning("3", "closed"),
                          warning("4", "handled", "yellow"), {**warning("5", "open"), "unit": "LB-XC-SLJ"}], units)  # fmt: skip
    assert [(r["warning_id"], r["due_at"], r["unit_name"]) for r in rows] == [
        ("2", "2026-11-22T01:00:00Z", "忻城县住建局"),  # red card first: 处置 due once acknowledged
        ("4", "2026-11-24T01:00:00Z", "忻城县住建局"),  # then yellow
        ("1", "2026-11-11T01:00:00Z", "忻城县住建局"),  # then by the deadline: 签收 while open
        ("5", "2026-11-15T01:00:00Z", "LB-XC-SLJ"),  # a unit the directory does not name: its code
    ]  # the closed one is not listed


def test_a_centre_sends_work_to_the_townships_villages_grids_and_departments_of_its_area_only():
    picked = task_units(UNITS, "LB-XC")
    assert [u["code"] for u in picked] == [
        "LB-XC-CG", "LB-XC-HT", "LB-XC-CG-CD", "LB-XC-CG-CZ", "LB-XC-HT-A", "LB-XC-CG-CZ-G01", "LB-XC-ZJJ",
    ]  # fmt: skip
    # A township's centre: its own villages and grids; no county department, no other township.
    assert [u["code"] for u in task_units(UNITS, "LB-XC-CG")] == ["LB-XC-CG-CD", "LB-XC-CG-CZ", "LB-XC-CG-CZ-G01"]


def test_each_user_sees_the_items_it_works_or_oversees_and_how_many_of_all_are_closed():
    task = {"task_id": "RW-1", "items": [
        {"item_no": 1, "unit": "LB-XC-ZJJ", "unit_name": "住建局", "township": "LB-XC-CG", "village": "LB-XC-CG-CZ",
         "grid": "LB-XC-CG-CZ-G01", "state": "closed"},
        {"item_no": 2, "unit": "LB-XC-CG-CD", "unit_name": "城东社区", "township": "LB-XC-CG", "village": "LB-XC-CG-CD",
         "grid": None, "state": "signed"},
        {"item_no": 3, "unit": "LB-XC-HT-A", "unit_name": None, "township": "LB-XC-HT", "village": "LB-XC-HT-A",
         "grid": None, "state": "issued"},
    ]}  # fmt: skip

    def seen(root: str) -> list[int]:
        [row] = task_rows([task], UNITS, root)
        assert (row["closed"], row["total"]) == (1, 3)
        return [i["item_no"] for i in row["items"]]

    assert seen("LB-XC") == [1, 2, 3]  # the county's centre: all
    assert seen("LB-XC-ZJJ") == [1]  # the department: its own
    assert seen("LB-XC-CG") == [1, 2]  # the township: its villages' items, the department's about its place too
    assert seen("LB-XC-CG-CD") == [2]
    assert seen("LB-XC-HT") == [3]
    assert task_rows([task], UNITS, "LB-XC-HT")[0]["items"][0]["unit_name"] == "甲村"  # the directory's name when insight had none
