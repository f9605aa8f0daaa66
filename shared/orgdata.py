"""The organisation directory as data: units, users and the dispatch catalogue (派单目录).

One readable JSON file (``services/directory/demo_org.json`` by default) describes

- **units**: city → county → township (乡镇/街道) → village (村/社区) → grid (网格), plus
  county departments (县直部门) and command centres (综治中心: city, county, township and
  village level), each with a stable ASCII
  ``code`` such as ``LB-XC-CG-CD-G01``; places may carry a polygon;
- **users**: demo people, one role each, in a unit that fits the role;
- **catalogue**: who owns which matter where. Entries are ``{subject_class, area, owner}``
  with optional ``keywords`` naming a specific matter (事项), e.g. water supply inside
  infrastructure. ``owner`` is a unit code or ``"township"`` — the area's own township,
  which is the default: 小事不出网格、大事不出镇村; only what a township cannot handle is
  owned by a county department (streetlamps → 住建局, irrigation → 水利局).

Everything is checked on load — unique codes, parents that exist and fit (a grid sits in a
village, a department in a county), rings with ≥ 3 points (an open ring is closed
implicitly; a closed one is stored open), known subject classes, catalogue owners inside
the area's county, users in units that fit their role — and a bad file is refused with
one ``OrgDataError`` naming each problem on its own line (field errors such as a short ring
are reported first; the cross-checks run once every field is sound). Once loaded, the
directory is immutable and every query is pure.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from shared.events import Role
from shared.geo import BBox, bbox, in_bbox, point_in_polygon

DEMO_FILE = Path(__file__).resolve().parent.parent / "services" / "directory" / "demo_org.json"

Kind = Literal["city", "county", "township", "village", "grid", "department", "centre"]
Point = tuple[float, float]

#: Subject classes (the second axis of triage, next to the 五事 category): code → Chinese name.
#: One class per line of a county's public services, so that what citizens write has a
#: class and the catalogue an owner for it (a school place is 教育, not 政策咨询).
SUBJECT_CLASSES: Mapping[str, str] = {
    "infrastructure": "基础设施",
    "environment": "生态环境",
    "public_safety": "公共安全",
    "social_security": "社会保障",
    "disputes": "矛盾纠纷",
    "consultation": "政策咨询",
    "agriculture": "农业农村",
    "transport": "交通出行",
    "housing": "住房建设",
    "education": "教育",
    "health": "卫生健康",
    "market": "市场监管",
    "culture_tourism": "文化旅游",
    "police": "公安交警",
    "urban_management": "城市管理",
    "power": "供电",
    "water_supply": "供水",
    "gas": "燃气",
    "telecom": "通信",
    "civil_affairs": "民政",
    "labour": "劳动就业",
    "land": "自然资源",
    "other": "其他",
}

#: Kinds that are places (may have a polygon, may be a catalogue area), coarse to fine.
PLACE_KINDS: tuple[str, ...] = ("city", "county", "township", "village", "grid")

#: Which kind of parent each kind of unit may have (None: a root).
PARENT_KINDS: Mapping[str, tuple[str | None, ...]] = {
    "city": (None,),
    "county": ("city",),
    "township": ("county",),
    "village": ("township",),
    "grid": ("village",),
    "department": ("county", "city"),
    # 综治中心 at every level down to the village (来宾 runs three-level centres: county,
    # township, village), each serving the place it sits in.
    "centre": ("city", "county", "township", "village"),
}

#: Roles that work inside a unit of a given kind; other roles may have any unit or none.
ROLE_UNIT_KINDS: Mapping[Role, tuple[str, ...]] = {
    Role.grid_worker: ("grid",),
    Role.village_staff: ("village",),
    Role.township_staff: ("township",),
    Role.township_head: ("township",),
    Role.dept_clerk: ("department",),
    Role.dept_head: ("department",),
    Role.centre_dispatcher: ("centre",),
    Role.centre_supervisor: ("centre",),
}

#: What a catalogue entry may name as owner besides the relative "township".
OWNER_KINDS: tuple[str, ...] = ("township", "village", "department", "centre")
TOWNSHIP = "township"
ANY = "*"


class OrgDataError(ValueError):
    """The organisation data is unusable; the message lists every problem found."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Unit(_Frozen):
    code: str = Field(pattern=r"^[A-Z0-9]+(-[A-Z0-9]+)*$", max_length=64, description="stable ASCII code")
    name: str = Field(min_length=1, max_length=64)
    short_name: str | None = Field(default=None, max_length=32, description="e.g. 住建局")
    kind: Kind
    parent: str | None = None
    polygon: tuple[Point, ...] | None = Field(default=None, description="(lat, lng) ring, stored open")
    duties: tuple[str, ...] = Field(default=(), description="subject classes a department or centre handles")

    @field_validator("polygon")
    @classmethod
    def _ring(cls, ring: tuple[Point, ...] | None) -> tuple[Point, ...] | None:
        if ring is None:
            return None
        points = list(ring)
        if len(points) > 1 and points[0] == points[-1]:
            points.pop()  # closed on input; stored open, the closing edge is implied
        if len(set(points)) < 3:
            raise ValueError(f"a polygon needs at least 3 distinct points, got {len(set(points))}")
        for lat, lng in points:
            if not (-90 <= lat <= 90 and -180 <= lng <= 180):
                raise ValueError(f"point ({lat}, {lng}) is not a (lat, lng) pair")
        return tuple(points)

    @field_validator("duties")
    @classmethod
    def _known_duties(cls, duties: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [d for d in duties if d not in SUBJECT_CLASSES]
        if unknown:
            raise ValueError(f"unknown subject classes {unknown}; known: {', '.join(SUBJECT_CLASSES)}")
        return duties

    @model_validator(mode="after")
    def _polygon_only_for_places(self) -> Unit:
        if self.polygon is not None and self.kind not in PLACE_KINDS:
            raise ValueError(f"a {self.kind} is not a place and has no polygon")
        return self

    @property
    def is_place(self) -> bool:
        return self.kind in PLACE_KINDS


class User(_Frozen):
    id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=64)
    role: Role
    unit: str | None = None


class CatalogueEntry(_Frozen):
    """One line of the dispatch catalogue (派单目录)."""

    subject_class: str = Field(description='a subject class, or "*" for any')
    area: str = Field(description='unit code of a place (the entry covers everything below it), or "*"')
    owner: str = Field(description='unit code, or "township": the township of the area where the matter is')
    matter: str | None = Field(default=None, description="事项, as the catalogue names it")
    keywords: tuple[str, ...] = Field(default=(), description="the entry applies only when the text has one of these")
    note: str | None = None

    @field_validator("subject_class")
    @classmethod
    def _known_subject(cls, value: str) -> str:
        if value != ANY and value not in SUBJECT_CLASSES:
            raise ValueError(f"unknown subject class {value!r}; known: {', '.join(SUBJECT_CLASSES)} or '*'")
        return value

    @field_validator("keywords")
    @classmethod
    def _no_empty_keywords(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not k for k in value):
            raise ValueError("keywords must not be empty strings")
        return value


class OrgDirectory(_Frozen):
    name: str
    version: int = Field(ge=1)
    description: str | None = None
    units: tuple[Unit, ...] = Field(min_length=1)
    users: tuple[User, ...] = ()
    catalogue: tuple[CatalogueEntry, ...] = ()

    _by_code: dict[str, Unit] = PrivateAttr(default_factory=dict)
    _children: dict[str, list[Unit]] = PrivateAttr(default_factory=dict)
    _users: dict[str, User] = PrivateAttr(default_factory=dict)
    _boxes: dict[str, BBox] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> OrgDirectory:
        by_code = {u.code: u for u in self.units}
        problems = [
            *_unit_problems(self.units),
            *_user_problems(self.users, by_code),
            *_catalogue_problems(self.catalogue, by_code),
        ]
        if problems:
            raise ValueError("\n".join(problems))
        self._by_code = by_code
        self._users = {u.id: u for u in self.users}
        for unit in self.units:
            self._children.setdefault(unit.code, [])
            if unit.parent is not None:
                self._children.setdefault(unit.parent, []).append(unit)
            if unit.polygon:
                self._boxes[unit.code] = bbox(unit.polygon)
        return self

    # ------------------------------------------------------------------ units

    def unit(self, code: str) -> Unit:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"no unit {code!r} in the organisation directory") from None

    def has_unit(self, code: str) -> bool:
        return code in self._by_code

    def children(self, code: str) -> list[Unit]:
        """Direct children, in file order."""
        self.unit(code)
        return list(self._children[code])

    def ancestors(self, code: str) -> list[Unit]:
        """The unit's parents, nearest first (a grid: village, township, county, city)."""
        out, unit = [], self.unit(code)
        while unit.parent is not None:
            unit = self._by_code[unit.parent]
            out.append(unit)
        return out

    def nearest(self, code: str, kind: Kind) -> str | None:
        """The unit itself or its nearest ancestor of this kind."""
        for unit in [self.unit(code), *self.ancestors(code)]:
            if unit.kind == kind:
                return unit.code
        return None

    def county_of(self, code: str) -> str | None:
        return self.nearest(code, "county")

    def township_of(self, code: str) -> str | None:
        return self.nearest(code, "township")

    def village_of(self, code: str) -> str | None:
        return self.nearest(code, "village")

    def of_kind(self, kind: Kind) -> list[Unit]:
        return [u for u in self.units if u.kind == kind]

    def departments(self, county: str) -> list[Unit]:
        """The county's departments (县直部门), in file order; its centre is ``centre_of``."""
        return [u for u in self.children(county) if u.kind == "department"]

    def centre_of(self, code: str) -> str | None:
        """The command centre (综治中心) nearest above the unit: the village's own, else the
        township's, else the county's, else the city's."""
        for unit in [self.unit(code), *self.ancestors(code)]:
            if unit.kind == "centre":
                return unit.code
            for child in self._children[unit.code]:
                if child.kind == "centre":
                    return child.code
        return None

    def by_name(self, name: str) -> list[Unit]:
        """Units with exactly this name (names repeat across counties: every town has a 城东社区)."""
        name = name.strip()
        return [u for u in self.units if u.name == name or u.short_name == name]

    def containing(self, lat: float, lng: float, kind: Kind = "grid") -> list[Unit]:
        """Units of a kind whose polygon contains the point (boundary included), in file order."""
        return [
            u
            for u in self.units
            if u.kind == kind
            and u.polygon
            and in_bbox(lat, lng, self._boxes[u.code])
            and point_in_polygon(lat, lng, u.polygon)
        ]

    # ------------------------------------------------------------------ users

    def user(self, user_id: str) -> User:
        try:
            return self._users[user_id]
        except KeyError:
            raise KeyError(f"no user {user_id!r} in the organisation directory") from None

    def users_with_role(self, role: Role | str) -> list[User]:
        return [u for u in self.users if u.role == role]

    # ------------------------------------------------------------------ the dispatch catalogue

    def entry_for(self, subject_class: str, area: str, text: str | None = None) -> CatalogueEntry:
        """The catalogue entry that decides who owns a matter of this class in this area.

        Candidates are entries for this subject class or "*", whose area is the given unit,
        one of its ancestors, or "*", and — when they list keywords — whose keywords occur in
        ``text``. The most specific wins, in this order:

        1. an entry for the subject class beats a "*" entry (a default is only a default);
        2. a named matter (keywords found in the text) beats the class as a whole;
        3. the nearest area beats a farther one (a township's own entry beats its county's);
        4. more keywords found, then file order.
        """
        if subject_class not in SUBJECT_CLASSES:
            raise ValueError(f"unknown subject class {subject_class!r}; known: {', '.join(SUBJECT_CLASSES)}")
        depth = {code: i for i, code in enumerate([area, *(u.code for u in self.ancestors(area))])}
        depth[ANY] = len(depth)
        best: tuple[tuple[int, int, int, int, int], CatalogueEntry] | None = None
        for index, entry in enumerate(self.catalogue):
            if entry.subject_class not in (subject_class, ANY) or entry.area not in depth:
                continue
            hits = sum(1 for k in entry.keywords if text and k in text)
            if entry.keywords and not hits:
                continue
            key = (
                0 if entry.subject_class == subject_class else 1,
                0 if entry.keywords else 1,
                depth[entry.area],
                -hits,
                index,
            )
            if best is None or key < best[0]:
                best = (key, entry)
        if best is None:
            raise LookupError(f"no catalogue entry covers {subject_class} in {area}")
        return best[1]

    def owner_for(self, subject_class: str, area: str, text: str | None = None) -> str:
        """Unit code of the owner of a matter (see ``entry_for``).

        ``"township"`` resolves to the area's township; for an area above any township (a
        matter located only to the county) it resolves to the county's command centre, which
        triages it further. ``text`` (title and description) lets keyword entries apply.
        """
        entry = self.entry_for(subject_class, area, text)
        if entry.owner != TOWNSHIP:
            return entry.owner
        owner = self.township_of(area) or self.centre_of(area)
        if owner is None:
            raise LookupError(f"{area} has no township and no command centre to own {subject_class}")
        return owner


# ---------------------------------------------------------------------- consistency checks


def _unit_problems(units: Iterable[Unit]) -> list[str]:
    units = list(units)
    problems: list[str] = []
    duplicates = sorted(code for code, n in Counter(u.code for u in units).items() if n > 1)
    if duplicates:
        problems.append(f"unit codes used twice: {duplicates}")
    by_code = {u.code: u for u in units}
    for u in units:
        parent = by_code.get(u.parent) if u.parent is not None else None
        if u.parent is not None and parent is None:
            problems.append(f"unit {u.code} ({u.name}): parent {u.parent} does not exist")
            continue
        parent_kind = parent.kind if parent is not None else None
        if parent_kind not in PARENT_KINDS[u.kind]:
            allowed = " or ".join("no parent" if k is None else f"a {k}" for k in PARENT_KINDS[u.kind])
            where = f"a {parent_kind} ({u.parent})" if parent_kind else "no parent"
            problems.append(f"unit {u.code} ({u.name}) is a {u.kind} under {where}; a {u.kind} belongs under {allowed}")
    return problems


def _user_problems(users: Iterable[User], by_code: Mapping[str, Unit]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for user in users:
        if user.id in seen:
            problems.append(f"user id {user.id} used twice")
        seen.add(user.id)
        if user.unit is not None and user.unit not in by_code:
            problems.append(f"user {user.id}: unit {user.unit} does not exist")
            continue
        kinds = ROLE_UNIT_KINDS.get(user.role)
        if kinds and (user.unit is None or by_code[user.unit].kind not in kinds):
            where = f"a {by_code[user.unit].kind} ({user.unit})" if user.unit else "no unit"
            problems.append(f"user {user.id}: a {user.role.value} works in a {' or '.join(kinds)}, not in {where}")
    return problems


def _county(code: str, by_code: Mapping[str, Unit]) -> str | None:
    """Like ``OrgDirectory.county_of`` but safe on data not yet checked (missing parents, cycles)."""
    unit, seen = by_code.get(code), set()
    while unit is not None and unit.code not in seen:
        if unit.kind == "county":
            return unit.code
        seen.add(unit.code)
        unit = by_code.get(unit.parent) if unit.parent else None
    return None


def _catalogue_problems(catalogue: Iterable[CatalogueEntry], by_code: Mapping[str, Unit]) -> list[str]:
    problems: list[str] = []
    seen: dict[tuple[str, str, tuple[str, ...]], int] = {}
    for i, e in enumerate(catalogue):
        label = f"catalogue[{i}] ({e.subject_class} in {e.area})"
        key = (e.subject_class, e.area, tuple(sorted(e.keywords)))
        if key in seen:
            problems.append(f"{label} repeats catalogue[{seen[key]}]: the same class, area and keywords")
        seen.setdefault(key, i)
        if e.area != ANY and (e.area not in by_code or not by_code[e.area].is_place):
            problems.append(f"{label}: area {e.area} is not a place in the directory")
            continue
        if e.owner == TOWNSHIP:
            continue
        owner = by_code.get(e.owner)
        if owner is None:
            problems.append(f"{label}: owner {e.owner} does not exist")
        elif owner.kind not in OWNER_KINDS:
            problems.append(f"{label}: owner {e.owner} is a {owner.kind}; owners are {', '.join(OWNER_KINDS)}")
        elif e.area != ANY and (area_county := _county(e.area, by_code)) is not None:
            owner_county = _county(e.owner, by_code)
            if owner_county not in (None, area_county):
                problems.append(
                    f"{label}: owner {e.owner} belongs to {owner_county}, not to the area's county {area_county}"
                )
    return problems


# ---------------------------------------------------------------------- loading


def parse_org(data: Any, source: str = "organisation data") -> OrgDirectory:
    """Validate already-decoded data; raises ``OrgDataError`` naming every problem."""
    try:
        return OrgDirectory.model_validate(data)
    except ValidationError as exc:
        raise OrgDataError(f"{source} is invalid:\n" + "\n".join(_describe(exc, data))) from None


def load_org(path: Path | None = None) -> OrgDirectory:
    """Load and check an organisation file (default: the demo organisation of 来宾市)."""
    path = Path(path) if path is not None else DEMO_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise OrgDataError(f"{path} is not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return parse_org(data, str(path))


def _describe(exc: ValidationError, data: Any) -> list[str]:
    """One readable line per problem: ``units[7] LB-XC-CG: polygon: a polygon needs …``."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        where = ""
        if len(loc) >= 2 and isinstance(loc[1], int) and loc[0] in ("units", "users", "catalogue"):
            where = f"{loc[0]}[{loc[1]}]"
            try:
                item = data[loc[0]][loc[1]]
                ident = item.get("code") or item.get("id") if isinstance(item, dict) else None
            except (KeyError, IndexError, TypeError):
                ident = None
            if ident:
                where += f" {ident}"
            loc = loc[2:]
        rest = ".".join(str(p) for p in loc if not isinstance(p, int))
        where = ": ".join(p for p in (where, rest) if p)
        for message in str(err["msg"]).removeprefix("Value error, ").splitlines():
            lines.append(f"- {where}: {message}" if where else f"- {message}")
    return lines
