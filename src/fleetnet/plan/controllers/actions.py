"""What a controller decision asks for: writes of objects, and the Events to record once they succeed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """A core/v1 Event about the object being reconciled (``type`` Normal or Warning)."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Write:
    """Create, update (conditional on the object's resourceVersion) or delete one object."""

    verb: str  # create | update | delete
    obj: dict[str, Any]
    events: tuple[Event, ...] = ()
