"""Editing the org document: pure functions on its JSON form, no I/O.

Each edit takes the current document (a dict as stored) and returns the changed copy and
a one-line summary for the history. Whether the result still holds together — parents
that exist and fit, users in units that fit their role, catalogue owners in the area's
county — is decided once, on the whole document, by ``shared.orgdata.parse_org``
(``validate``): the rules live in one place, shared with every service that loads it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.events import Actor, Role
from shared.permissions import PERMISSIONS
from shared.scope import area_of, covers
from shared.orgdata import CatalogueEntry, OrgDataError, OrgDirectory, parse_org

#: Who may change the directory (the table in shared.permissions); everyone may read it.
EDITOR_ROLES: frozenset[Role] = PERMISSIONS["directory.unit_put"].roles

Document = dict[str, Any]


class Inconsistent(Exception):
    """The changed document does not hold together; ``problems`` names each fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Missing(LookupError):
    """No unit or user with that code or id."""


class Blocked(Exception):
    """A unit cannot be deleted while something still refers to it."""

    def __init__(self, code: str, children: list[str], users: list[str], catalogue: list[int]) -> None:
        self.code, self.children, self.users, self.catalogue = code, children, users, catalogue
        parts = []
        if children:
            parts.append(f"child units {', '.join(children)}")
        if users:
            parts.append(f"users {', '.join(users)}")
        if catalogue:
            parts.append(f"catalogue entries {', '.join(f'catalogue[{i}]' for i in catalogue)}")
        super().__init__(f"unit {code} still has {'; '.join(parts)}: move or delete them first")


@dataclass(frozen=True)
class Edit:
    document: Document
    summary: str
    created: bool = False


def may_change(role: Role) -> bool:
    return role in EDITOR_ROLES


# ---------------------------------------------------------------------- validation


def canonical(org: OrgDirectory) -> Document:
    """The stored form: what ``parse_org`` made of it (polygons open, text stripped),
    without fields left at their defaults, so a version reads like the seed file."""
    return org.model_dump(mode="json", exclude_defaults=True)


def validate(document: Mapping[str, Any], version: int) -> tuple[OrgDirectory, Document]:
    """Check the whole document as version ``version``; Inconsistent names every problem."""
    data = dict(document)
    data["version"] = version
    try:
        org = parse_org(data, "the changed directory")
    except OrgDataError as exc:
        lines = str(exc).splitlines()[1:] or [str(exc)]
        raise Inconsistent([line.removeprefix("- ") for line in lines]) from None
    return org, canonical(org)


# ---------------------------------------------------------------------- edits


def _index(items: Iterable[Mapping[str, Any]], key: str, value: str) -> int | None:
    for i, item in enumerate(items):
        if item.get(key) == value:
            return i
    return None


def put_unit(document: Mapping[str, Any], code: str, fields: Mapping[str, Any]) -> Edit:
    """Create the unit, or replace it in place (its position in the file is kept)."""
    doc = copy.deepcopy(dict(document))
    units = doc.setdefault("units", [])
    unit = {"code": code, **{k: v for k, v in fields.items() if k != "code"}}
    at = _index(units, "code", code)
    if at is None:
        units.append(unit)
        return Edit(doc, f"unit {code} ({unit.get('name', '?')}) created", created=True)
    units[at] = unit
    return Edit(doc, f"unit {code} ({unit.get('name', '?')}) replaced")


def delete_unit(document: Mapping[str, Any], code: str) -> Edit:
    """Remove a unit that nothing refers to any more (no children, users or catalogue lines)."""
    doc = copy.deepcopy(dict(document))
    units = doc.get("units", [])
    at = _index(units, "code", code)
    if at is None:
        raise Missing(f"no unit {code} in the directory")
    children = [u["code"] for u in units if u.get("parent") == code]
    users = [u["id"] for u in doc.get("users", []) if u.get("unit") == code]
    entries = [i for i, e in enumerate(doc.get("catalogue", [])) if code in (e.get("area"), e.get("owner"))]
    if children or users or entries:
        raise Blocked(code, children, users, entries)
    name = units[at].get("name", "?")
    del units[at]
    return Edit(doc, f"unit {code} ({name}) deleted")


def put_user(document: Mapping[str, Any], user_id: str, fields: Mapping[str, Any]) -> Edit:
    doc = copy.deepcopy(dict(document))
    users = doc.setdefault("users", [])
    user = {"id": user_id, **{k: v for k, v in fields.items() if k != "id"}}
    at = _index(users, "id", user_id)
    if at is None:
        users.append(user)
        return Edit(doc, f"user {user_id} ({user.get('role', '?')}) created", created=True)
    users[at] = user
    return Edit(doc, f"user {user_id} ({user.get('role', '?')}) replaced")


def delete_user(document: Mapping[str, Any], user_id: str) -> Edit:
    doc = copy.deepcopy(dict(document))
    users = doc.get("users", [])
    at = _index(users, "id", user_id)
    if at is None:
        raise Missing(f"no user {user_id} in the directory")
    del users[at]
    return Edit(doc, f"user {user_id} deleted")


def replace_catalogue(document: Mapping[str, Any], entries: list[Mapping[str, Any]]) -> Edit:
    """The dispatch catalogue (派单目录) as a whole: it is read and decided as a whole."""
    doc = copy.deepcopy(dict(document))
    before = [_entry_key(e) for e in doc.get("catalogue", [])]
    after = [_entry_key(e) for e in entries]
    added = sum(1 for k in after if k not in before)
    removed = sum(1 for k in before if k not in after)
    changed = sum(1 for k in after if k in before and _find(entries, k) != _find(doc.get("catalogue", []), k))
    doc["catalogue"] = [dict(e) for e in entries]
    return Edit(doc, f"catalogue: {len(after)} entries ({added} added, {removed} removed, {changed} changed)")


def _entry_key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    return (entry.get("subject_class"), entry.get("area"), tuple(sorted(entry.get("keywords") or ())))


def _find(entries: Iterable[Mapping[str, Any]], key: tuple[Any, ...]) -> Mapping[str, Any] | None:
    return next((e for e in entries if _entry_key(e) == key), None)


# ---------------------------------------------------------------------- the catalogue, read


@dataclass(frozen=True)
class Resolution:
    owner: str
    entry: CatalogueEntry
    index: int


def resolve(org: OrgDirectory, subject_class: str, area: str, text: str | None) -> Resolution:
    """Who owns this matter (``OrgDirectory.owner_for``) and the catalogue line that decided.

    Raises ValueError for an unknown subject class, KeyError for an unknown area and
    LookupError when no line covers it.
    """
    entry = org.entry_for(subject_class, area, text)
    return Resolution(org.owner_for(subject_class, area, text), entry, org.catalogue.index(entry))


# --------------------------------------------------------------------------- whose part of the tree

#: Users who act across the whole city (or without a unit): only the city's administrators
#: create or change them — a county may not make itself an auditor or an operator.
CITY_WIDE_ROLES = frozenset({Role.auditor, Role.ops})


def edit_problems(old: OrgDirectory, new: OrgDirectory, actor: Actor) -> list[str]:
    """What an edit changes outside the editor's part of the tree, one line each ([] when
    none). The editor's area is the unit its centre serves (``shared.scope.area_of``): a
    county centre's supervisor edits the units below its county, the users in them and the
    catalogue lines of its areas; the city centre's supervisors (the city's administrators)
    edit everything. A unit's old place and its new one must both lie in the area."""
    area = area_of(old, actor)
    if area is None:
        return [f"your unit {actor.org_unit or '(none)'} serves no area of the directory"]
    if old.unit(area).parent is None:
        return []  # the city's administrators

    def below(org: OrgDirectory, code: str | None) -> bool:
        return code is not None and code != area and covers(org, area, code)

    problems = []
    old_units, new_units = {u.code: u for u in old.units}, {u.code: u for u in new.units}
    for code in sorted(set(old_units) | set(new_units)):
        if old_units.get(code) == new_units.get(code):
            continue
        if (code in old_units and not below(old, code)) or (code in new_units and not below(new, code)):
            problems.append(f"unit {code} is outside your area {area}")
    old_users, new_users = {u.id: u for u in old.users}, {u.id: u for u in new.users}
    for user_id in sorted(set(old_users) | set(new_users)):
        if old_users.get(user_id) == new_users.get(user_id):
            continue
        for org, user in ((old, old_users.get(user_id)), (new, new_users.get(user_id))):
            if user is not None and (user.role in CITY_WIDE_ROLES or user.unit is None or not covers(org, area, user.unit)):
                problems.append(f"user {user_id} ({user.role.value} of {user.unit or 'no unit'}) is outside your area {area}")
                break
    changed = [(old, e) for e in old.catalogue if e not in new.catalogue] + [(new, e) for e in new.catalogue if e not in old.catalogue]
    for org, entry in changed:
        owner_ok = entry.owner == "township" or covers(org, area, entry.owner)
        if entry.area == "*" or not covers(org, area, entry.area) or not owner_ok:
            problems.append(f"catalogue line {entry.subject_class} in {entry.area} (owner {entry.owner}) is outside your area {area}")
    return problems
