"""Scoring's event handlers: ``async def handle(event, uow)``."""

from shared.events import EVENT_TYPES
from shared.case_status import track_case_status

# Follow every case-scoped event: keeps this service's view of where each case stands.
HANDLERS = {event_type: track_case_status for event_type, cls in EVENT_TYPES.items() if cls.case_scoped}
