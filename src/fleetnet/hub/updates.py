"""Update strategies, update runs and gates (wired to the pure scheduler in plan/updaterun)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleetnet.hub.daemon import Hub


class UpdateController:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None
