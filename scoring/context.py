"""What a running scoring service holds besides the shared runtime: its clock and the rebuild."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends

from scoring.settings import ScoringSettings
from shared.service import service_context

if TYPE_CHECKING:
    from scoring.rebuild import Rebuild
    from scoring.schedule import BulletinSchedule


@dataclass
class Clock:
    """The service's "now": the system clock, or a fixed time set for demos and tests."""

    fixed: datetime | None = None

    def now(self) -> datetime:
        return self.fixed or datetime.now(UTC)


@dataclass
class ScoringContext:
    settings: ScoringSettings
    clock: Clock
    # Made at start-up (they need the runtime: its engine and unit of work).
    rebuild: Rebuild | None = None
    schedule: BulletinSchedule | None = None

    @classmethod
    def from_settings(cls, settings: ScoringSettings) -> ScoringContext:
        return cls(settings=settings, clock=Clock(settings.test_clock))


ContextDep = Annotated[ScoringContext, Depends(service_context)]
