"""The subject model for the centre's supervisor and ops: which version routes, how it was evaluated."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from intake.api import ContextDep
from intake.learning import DEMO_VERSION
from shared.actors import ActorDep
from shared.permissions import ADMIN_ROLES
from shared.scope import require_role

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class VersionView(BaseModel):
    version: str
    promoted: bool
    trigger: str
    examples_upto: int
    trained_on: int
    evaluation: dict[str, Any]
    created_at: str


class ModelView(BaseModel):
    current: str = Field(description='the version that routes in this replica: "demo" (the shipped examples) or "v<n>"')
    trained_on: int = Field(description="examples the current version learnt (demo + the county's)")
    evaluation: dict[str, Any] | None = Field(description="the current version's evaluation when it was promoted (None: demo)")
    threshold: float
    examples: dict[str, int] = Field(description="the county's stored examples by source")
    recent: list[VersionView] = Field(description="the latest candidates, promoted or not, newest first")


@router.get("/model", response_model=ModelView, summary="The subject model that routes, its evaluation, and the latest candidates")
async def model_state(ctx: ContextDep, actor: ActorDep) -> ModelView:
    require_role(actor, ADMIN_ROLES, "read the routing model's versions")
    holder = ctx.routing
    pool = ctx.store.pool
    counts = await pool.fetch("SELECT source, count(*) AS n FROM training_examples GROUP BY source ORDER BY source")
    rows = await pool.fetch(
        "SELECT version, promoted, trigger, examples_upto, trained_on, evaluation, created_at FROM model_versions ORDER BY version DESC LIMIT 10"
    )
    version = holder.version
    return ModelView(
        current=version.name, trained_on=holder.model.trained_on,
        evaluation=None if version is DEMO_VERSION else version.evaluation, threshold=holder.threshold,
        examples={r["source"]: r["n"] for r in counts},
        recent=[
            VersionView(version=f"v{r['version']}", promoted=r["promoted"], trigger=r["trigger"], examples_upto=r["examples_upto"],
                        trained_on=r["trained_on"], evaluation=json.loads(r["evaluation"]), created_at=r["created_at"].isoformat())
            for r in rows
        ],
    )  # fmt: skip
