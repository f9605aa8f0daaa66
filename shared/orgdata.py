"""The organisation directory as data: units, users and the dispatch catalogue (派单目录).

Loaded from a readable JSON file (the demo organisation by default) and checked on load:
unique codes, existing parents, closed polygons. Queries are pure.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEMO_FILE = Path(__file__).resolve().parent.parent / "services" / "directory" / "demo_org.json"

Kind = Literal["city", "county", "township", "village", "grid", "department", "centre"]


class Unit(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str = Field(pattern=r"^[A-Z0-9-]{2,64}$")
    name: str = Field(min_length=1)
    kind: Kind
    parent: str | None = None
    polygon: tuple[tuple[float, float], ...] | None = None
    duties: tuple[str, ...] = ()

    @field_validator("polygon")
    @classmethod
    def _ring(cls, ring: tuple[tuple[float, float], ...] | None) -> tuple[tuple[float, float], ...] | None:
        if ring is None:
            return None
        points = list(ring)
        if len(points) > 1 and points[0] == points[-1]:
            points = points[:-1]  # stored open; the last edge is implied
        if len(points) < 3:
            raise ValueError("a polygon needs at least 3 points")
        return tuple(points)


class User(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    role: str
    unit: str | None = None


class CatalogueEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    subject_class: str  # or "*"
    area: str  # unit code or "*"
    owner: str  # unit code, or "township": the area's township
    note: str | None = None


class OrgDirectory(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    units: tuple[Unit, ...]
    users: tuple[User, ...] = ()
    catalogue: tuple[CatalogueEntry, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> OrgDirectory:
        codes = [u.code for u in self.units]
        duplicates = {c for c in codes if codes.count(c) > 1}
        if duplicates:
            raise ValueError(f"unit codes used twice: {sorted(duplicates)}")
        known = set(codes)
        orphans = [u.code for u in self.units if u.parent is not None and u.parent not in known]
        if orphans:
            raise ValueError(f"units whose parent does not exist: {orphans}")
        bad_users = [u.id for u in self.users if u.unit is not None and u.unit not in known]
        if bad_users:
            raise ValueError(f"users in units that do not exist: {bad_users}")
        bad_owners = [e.owner for e in self.catalogue if e.owner != "township" and e.owner not in known]
        if bad_owners:
            raise ValueError(f"catalogue owners that do not exist: {bad_owners}")
        return self

    @cached_property
    def _by_code(self) -> dict[str, Unit]:
        return {u.code: u for u in self.units}

    def unit(self, code: str) -> Unit:
        try:
            return self._by_code[code]
        except KeyError:
            raise KeyError(f"no unit {code}") from None

    def children(self, code: str) -> list[Unit]:
        return [u for u in self.units if u.parent == code]

    def ancestors(self, code: str) -> list[Unit]:
        """The unit's parents, nearest first."""
        out, unit = [], self.unit(code)
        while unit.parent is not None:
            unit = self.unit(unit.parent)
            out.append(unit)
        return out

    def _up_to(self, code: str, kind: Kind) -> str | None:
        for unit in [self.unit(code), *self.ancestors(code)]:
            if unit.kind == kind:
                return unit.code
        return None

    def county_of(self, code: str) -> str | None:
        return self._up_to(code, "county")

    def township_of(self, code: str) -> str | None:
        return self._up_to(code, "township")

    def departments(self, county: str) -> list[Unit]:
        return [u for u in self.children(county) if u.kind == "department"]

    def by_name(self, name: str) -> list[Unit]:
        return [u for u in self.units if u.name == name]

    def owner_for(self, subject_class: str, area: str) -> str:
        """Who owns a matter here: the most specific catalogue entry along the area's
        ancestors, a specific subject before '*'. 'township' resolves to the area's township."""
        chain = [area, *(u.code for u in self.ancestors(area)), "*"]
        for place in chain:
            for subject in (subject_class, "*"):
                for entry in self.catalogue:
                    if entry.area == place and entry.subject_class == subject:
                        if entry.owner != "township":
                            return entry.owner
                        township = self.township_of(area)
                        if township is None:
                            raise ValueError(f"{area} has no township to own {subject_class}")
                        return township
        raise ValueError(f"no catalogue entry covers {subject_class} in {area}")


def load_org(path: Path | None = None) -> OrgDirectory:
    return OrgDirectory.model_validate(json.loads((path or DEMO_FILE).read_text(encoding="utf-8")))
