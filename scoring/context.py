"""What a running scoring service holds besides the shared runtime: its clock and the rebuild."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends

from scoring.rebuild import Rebuild
from shared.service import Runtime, RuntimeDep


@dataclass
class Clock:
    """The service's "now": the system clock, or a fixed time set for demos and tests."""

    fixed: datetime | None = None

    def now(self) -> datetime:
        return self.fixed or datetime.now(UTC)


@dataclass
class ScoringContext:
    clock: Clock
    rebuild: Rebuild
    extras: dict = field(default_factory=dict)


def context_of(runtime: Runtime) -> ScoringContext:
    return runtime.extras["scoring"]


async def get_context(runtime: RuntimeDep) -> ScoringContext:
    return context_of(runtime)


ContextDep = Annotated[ScoringContext, Depends(get_context)]
