"""The committed JSON Schema of the event contract, and the backward-compatibility check.

``python -m shared.schema`` regenerates ``shared/schema/case-lifecycle.schema.json``.
``python -m shared.schema --publish`` also freezes it as ``published/v<N>.json``; a
published version is a promise: code may add to it, never take away or retype.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.events import SCHEMA_VERSION, json_schema

SCHEMA_DIR = Path(__file__).parent / "schema"
CURRENT = SCHEMA_DIR / "case-lifecycle.schema.json"
PUBLISHED = SCHEMA_DIR / "published"

_IGNORED = {"title", "description", "default", "examples"}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def published_versions() -> dict[int, dict[str, Any]]:
    return {int(p.stem[1:]): json.loads(p.read_text()) for p in sorted(PUBLISHED.glob("v*.json"))}


def event_refs(schema: dict[str, Any]) -> dict[str, str]:
    """Event type → ``$defs`` name, from the union's discriminator mapping."""
    mapping = schema["discriminator"]["mapping"]
    return {etype: ref.rsplit("/", 1)[-1] for etype, ref in mapping.items()}


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What in ``new`` would break a reader of events written under ``old`` (or a producer
    still writing them): removed types, removed or retyped fields, new required fields."""
    problems: list[str] = []
    old_types, new_types = event_refs(old), event_refs(new)
    for etype, old_def in old_types.items():
        if etype not in new_types:
            problems.append(f"{etype}: event type removed")
            continue
        _compare(
            old["$defs"][old_def], new["$defs"][new_types[etype]], etype, old["$defs"], new["$defs"], problems, set()
        )
    return problems


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    ref = node.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return defs[name], name
    return node, None


def _compare(
    old: dict[str, Any],
    new: dict[str, Any],
    path: str,
    old_defs: dict[str, Any],
    new_defs: dict[str, Any],
    problems: list[str],
    seen: set[tuple[str | None, str | None]],
) -> None:
    old, old_name = _resolve(old, old_defs)
    new, new_name = _resolve(new, new_defs)
    if old_name is not None and (old_name, new_name) in seen:
        return
    seen = seen | {(old_name, new_name)}

    if "const" in old and old.get("const") != new.get("const"):
        problems.append(f"{path}: constant changed from {old['const']!r} to {new.get('const')!r}")
    for key in ("type", "format"):
        if key in old and old.get(key) != new.get(key):
            problems.append(f"{path}: {key} changed from {old[key]!r} to {new.get(key)!r}")
    if "enum" in old:
        lost = set(map(str, old["enum"])) - set(map(str, new.get("enum", [])))
        if lost:
            problems.append(f"{path}: enum values removed {sorted(lost)}")
    for key in ("anyOf", "oneOf"):
        if key in old:
            options = new.get(key, [new])
            for i, option in enumerate(old[key]):
                if not any(not _probe(option, candidate, old_defs, new_defs) for candidate in options):
                    problems.append(f"{path}: alternative {i} of {key} no longer accepted")
    if "items" in old:
        _compare(old["items"], new.get("items", {}), f"{path}[]", old_defs, new_defs, problems, seen)
    if "properties" in old:
        new_props = new.get("properties", {})
        for name, prop in old["properties"].items():
            if name not in new_props:
                problems.append(f"{path}.{name}: field removed")
                continue
            _compare(prop, new_props[name], f"{path}.{name}", old_defs, new_defs, problems, seen)
        newly_required = set(new.get("required", [])) - set(old.get("required", []))
        for name in sorted(newly_required):
            problems.append(f"{path}.{name}: field is now required")


def _probe(old: dict[str, Any], new: dict[str, Any], old_defs: dict[str, Any], new_defs: dict[str, Any]) -> list[str]:
    found: list[str] = []
    _compare(old, new, "", old_defs, new_defs, found, set())
    return found


def main(argv: list[str]) -> int:
    schema = json_schema()
    CURRENT.parent.mkdir(parents=True, exist_ok=True)
    CURRENT.write_text(render(schema))
    print(f"wrote {CURRENT}")
    if "--publish" in argv:
        PUBLISHED.mkdir(exist_ok=True)
        target = PUBLISHED / f"v{SCHEMA_VERSION}.json"
        target.write_text(render(schema))
        print(f"published {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
