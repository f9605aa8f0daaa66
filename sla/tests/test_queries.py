"""A unit's due list names its clock states as constants, so its prepared statement can
read the partial index ``clocks_open_unit_due`` (see shared/tests/test_db.py for why)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import asyncpg

from sla.models import clocks
from sla.repository import RUNNING_STATES, unit_clocks_query


def test_the_unit_due_list_names_the_indexed_states_as_constants():
    index = next(i for i in clocks.indexes if i.name == "clocks_open_unit_due")
    query = unit_clocks_query("LB-XC-ZJJ", after=None, before=datetime(2026, 11, 30, tzinfo=UTC), cursor=None, limit=50)
    sql = str(query.compile(dialect=asyncpg.dialect(), compile_kwargs={"render_postcompile": True}))
    assert "clocks.state IN ('running', 'breached')" in sql
    indexed = str(index.dialect_options["postgresql"]["where"].compile(compile_kwargs={"literal_binds": True}))
    assert all(f"'{state}'" in indexed for state in RUNNING_STATES), indexed
