"""The services the ops tool knows: their settings class (so it reads the same environment
variables as the service) and their app factory (for the handler and migrations a rebuild
needs; building the app starts nothing)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    settings: str  # "module:Class"
    app: str  # module with create_app(settings)
    consumes: bool = True

    def settings_cls(self) -> type:
        module, _, cls = self.settings.partition(":")
        return getattr(importlib.import_module(module), cls)

    def spec(self, settings: Any) -> Any:
        """The ServiceSpec as the service builds it (its handler bound to its context)."""
        app = importlib.import_module(self.app).create_app(settings)
        return app.state.spec


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry("intake", "intake.settings:IntakeSettings", "intake.app"),
        ServiceEntry("dispatch", "dispatch.settings:DispatchSettings", "dispatch.app"),
        ServiceEntry("sla", "sla.settings:SlaSettings", "sla.app"),
        ServiceEntry("scoring", "scoring.settings:ScoringSettings", "scoring.app"),
        ServiceEntry("notify", "notify.settings:NotifySettings", "notify.app"),
        ServiceEntry("insight", "services.insight.settings:InsightSettings", "services.insight.app"),
        ServiceEntry("directory", "services.directory.settings:DirectorySettings", "services.directory.app", consumes=False),
    )
}
