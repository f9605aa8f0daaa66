"""Where a unit sits in the organisation (county, township, name), from the directory.

Handlers have no runtime to ask, so they read the directory through this module: the copy
the running service keeps current from the topic (``follow``, set at start-up), else the
demo organisation (``shared.orgdata.load_org``), or one a test gave ``use``. A code the
directory does not know answers None: the facts keep the codes they were given.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from shared.orgdata import OrgDirectory, load_org

_current: OrgDirectory | None = None
_source: Callable[[], OrgDirectory] | None = None


@lru_cache(maxsize=1)
def _seed() -> OrgDirectory:
    return load_org()


def directory() -> OrgDirectory:
    if _current is not None:
        return _current
    return _source() if _source is not None else _seed()


def follow(source: Callable[[], OrgDirectory]) -> None:
    """Read the directory from ``source`` (the service's org follower) from now on."""
    global _source
    _source = source


def use(org: OrgDirectory) -> None:
    global _current
    _current = org


# Handlers ask the same few codes' county and township for every event (a rebuild: hundreds
# of thousands of times), and a directory lookup walks pydantic private attributes: answers
# are kept per directory — a directory is frozen, a new version is a new object, a new memo.
_memo_of: OrgDirectory | None = None
_memo: dict[tuple[str, str], str | None] = {}


def _nearest(code: str | None, kind: str) -> str | None:
    global _memo_of, _memo
    org = directory()
    if org is not _memo_of:
        _memo_of, _memo = org, {}
    if not code:
        return None
    key = (code, kind)
    if key in _memo:
        return _memo[key]
    if not org.has_unit(code):
        return None  # not kept: codes from events are not bounded by the directory
    answer = _memo[key] = org.nearest(code, kind)  # type: ignore[arg-type]
    return answer


def county_of(code: str | None) -> str | None:
    return _nearest(code, "county")


def township_of(code: str | None) -> str | None:
    return _nearest(code, "township")


def name_of(code: str) -> str:
    org = directory()
    if not org.has_unit(code):
        return code
    unit = org.unit(code)
    return unit.short_name or unit.name if unit.kind == "department" else unit.name


def kind_of(code: str) -> str | None:
    org = directory()
    return org.unit(code).kind if org.has_unit(code) else None


def ancestors_of(code: str) -> list[str]:
    """The places above a unit, nearest first (none for a code the directory does not know)."""
    org = directory()
    return [u.code for u in org.ancestors(code)] if org.has_unit(code) else []


def township_villages(township: str) -> list[str]:
    """The villages (村、社区) ranked among their township's: its villages, in file order."""
    org = directory()
    if not org.has_unit(township) or org.unit(township).kind != "township":
        return []
    return [u.code for u in org.children(township) if u.kind == "village"]


def county_units(county: str) -> list[str]:
    """The units ranked in a county's bulletin: its departments and townships, in file order."""
    org = directory()
    if not org.has_unit(county):
        return []
    return [u.code for u in org.children(county) if u.kind in ("department", "township")]


def person_name(user_id: str) -> str | None:
    """A handling person's name, when the directory knows them."""
    org = directory()
    try:
        return org.user(user_id).name
    except KeyError:
        return None
