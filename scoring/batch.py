"""Set-based writes: many fact rows in one statement, with the semantics of one row at a time.

A fact write (``Write``) is one SQL statement over rows given as one array per column
(``unnest(CAST(:a AS T[]), …) AS v(a, …)``): the rows of one event, of a consumer's batch,
or of a rebuild's thousands of events, in one round trip. Two rules keep the result the
same however the events are cut into batches (one event alone being the plainest cut):

- within a statement a target row is touched at most once: rows are split into rounds by
  the write's key (``rounds``), the n-th row of each key in round n, so the rows of one key
  still apply in their order;
- across writes, ``scoring.handlers.BATCH_ORDER`` runs inserts before the updates that
  need their rows, and the writes that do not commute in every order of events (an
  update before the insert of its row, a red card before the signature it is compared
  with) are detected per batch by ``scoring.handlers.order_sensitive``: such a batch is
  cut into parts that are not (``scoring.plan.order_safe_parts``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, cast, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql import Executable
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine


def unnest_rows(columns: Mapping[str, TypeEngine[Any]], name: str = "v") -> TableValuedAlias:
    """Rows given as one array per column, as a table to select from or join; the bind
    parameters are the column names with ``p_`` before them (``params``), since an update
    may not bind a name of its own table's columns."""
    arrays = [cast(bindparam(f"p_{column}"), ARRAY(type_)) for column, type_ in columns.items()]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name=name)


def params(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The parameters of an ``unnest_rows`` statement for these rows."""
    return {f"p_{column}": [row[column] for row in rows] for column in columns}


def rounds(rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> list[list[Mapping[str, Any]]]:
    """Split rows so that no key repeats within a part: the n-th row of each key goes to part n."""
    parts: list[list[Mapping[str, Any]]] = []
    seen: dict[tuple[Any, ...], int] = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        n = seen.get(k, 0)
        seen[k] = n + 1
        if n == len(parts):
            parts.append([])
        parts[n].append(row)
    return parts


@dataclass(frozen=True)
class CaseWrite:
    """A kind of case-level fact: its rows are folded per case and written by one MERGE
    (``scoring.plan``), which holds the rules; this only names the kind."""

    name: str


@dataclass(frozen=True)
class Write:
    """One kind of fact write. ``build`` gets the rows as a table (``v``) and returns the
    statement; ``key``: the target row's identity (rows sharing it go to successive rounds)."""

    name: str
    columns: dict[str, TypeEngine[Any]]
    key: tuple[str, ...]
    build: Callable[[TableValuedAlias], Executable]
    statement: Executable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "statement", self.build(unnest_rows(self.columns)))

    def plan(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Executable, dict[str, list[Any]]]]:
        """The statements (one per round) and their parameters for these rows."""
        return [(self.statement, params(list(self.columns), part)) for part in rounds(rows, self.key)]

