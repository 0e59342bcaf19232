"""REST routes for versions, update strategies, update runs and gates."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from fleetnet.hub.daemon import Hub


def add_update_routes(app: FastAPI, hub: Hub) -> None:
    @app.get("/versions")
    def versions() -> Any:
        return hub.catalog.catalog.to_json()
