"""REST routes for versions, update strategies, update runs and gates (Azure's resource names).

    GET    /versions                              the Kubernetes ↔ Cilium catalog
    GET    /updateStrategies                      PUT/GET/DELETE /updateStrategies/{name}
    GET    /updateRuns                            PUT/GET/DELETE /updateRuns/{name}
    POST   /updateRuns/{name}/start | /stop | /skip
    GET    /gates?state=&gateType=                GET/PATCH /gates/{id}, POST /gates/{id}/approve

Start, stop and skip answer at once with the run as it is after the request; the work goes on in
the daemon (``updaterun wait`` follows it). Errors are the app's ``{"error": {code, message}}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from fleetnet.errors import InvalidInput
from fleetnet.hub.daemon import Hub
from fleetnet.plan.updaterun import SkipTarget, UpgradeSpec
from fleetnet.plan.updaterun.events import skip_type


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StrategyPut(_Body):
    strategy: dict[str, Any]  # {"stages": [...]}, checked by the strategy parser


class RunPut(_Body):
    managed_cluster_update: dict[str, Any] = Field(..., alias="managedClusterUpdate")
    update_strategy_name: str | None = Field(None, alias="updateStrategyName")
    update_strategy_id: str | None = Field(None, alias="updateStrategyId")  # Azure's form: .../updateStrategies/NAME
    strategy: dict[str, Any] | None = None


class SkipTargetBody(_Body):
    type: str
    name: str


class SkipBody(_Body):
    targets: list[SkipTargetBody]


class GatePatchProperties(_Body):
    state: str


class GatePatch(_Body):
    properties: GatePatchProperties


def add_update_routes(app: FastAPI, hub: Hub) -> None:
    updates = hub.updates

    @app.get("/versions")
    def versions() -> Any:
        return hub.catalog.catalog.to_json()

    # ------------------------------------------------------------ strategies
    @app.get("/updateStrategies")
    def list_strategies() -> list[dict[str, Any]]:
        return updates.list_strategies()

    @app.put("/updateStrategies/{name}")
    def put_strategy(name: str, body: StrategyPut) -> dict[str, Any]:
        return updates.put_strategy(name, body.strategy)

    @app.get("/updateStrategies/{name}")
    def get_strategy(name: str) -> dict[str, Any]:
        return updates.get_strategy(name)

    @app.delete("/updateStrategies/{name}")
    def delete_strategy(name: str) -> dict[str, Any]:
        updates.delete_strategy(name)
        return {"deleted": name}

    # ------------------------------------------------------------ runs
    @app.get("/updateRuns")
    def list_runs() -> list[dict[str, Any]]:
        return updates.list_runs()

    @app.put("/updateRuns/{name}")
    def put_run(name: str, body: RunPut) -> dict[str, Any]:
        if body.update_strategy_name is not None and body.update_strategy_id is not None:
            raise InvalidInput("give either updateStrategyName or updateStrategyId, not both.")
        strategy_name = body.update_strategy_name
        if body.update_strategy_id is not None:
            strategy_name = body.update_strategy_id.rstrip("/").rsplit("/", 1)[-1]
        return updates.put_run(
            name,
            UpgradeSpec.from_json(body.managed_cluster_update),
            update_strategy_name=strategy_name,
            stages=body.strategy,
        )

    @app.get("/updateRuns/{name}")
    def get_run(name: str) -> dict[str, Any]:
        return updates.get_run(name)

    @app.delete("/updateRuns/{name}")
    def delete_run(name: str) -> dict[str, Any]:
        updates.delete_run(name)
        return {"deleted": name}

    @app.post("/updateRuns/{name}/start")
    def start_run(name: str) -> dict[str, Any]:
        return updates.start_run(name)

    @app.post("/updateRuns/{name}/stop")
    def stop_run(name: str) -> dict[str, Any]:
        return updates.stop_run(name)

    @app.post("/updateRuns/{name}/skip")
    def skip(name: str, body: SkipBody) -> dict[str, Any]:
        return updates.skip(name, [SkipTarget(skip_type(t.type), t.name) for t in body.targets])

    # ------------------------------------------------------------ gates
    @app.get("/gates")
    def list_gates(state: str | None = None, gateType: str | None = None) -> list[dict[str, Any]]:
        return updates.list_gates(state, gateType)

    @app.get("/gates/{gate_id}")
    def get_gate(gate_id: str) -> dict[str, Any]:
        return updates.get_gate(gate_id)

    @app.patch("/gates/{gate_id}")
    def patch_gate(gate_id: str, body: GatePatch) -> dict[str, Any]:
        if body.properties.state != "Completed":
            raise InvalidInput(
                f"a gate's state can only be set to Completed (approved), not {body.properties.state!r}."
            )
        return updates.approve_gate(gate_id)

    @app.post("/gates/{gate_id}/approve")
    def approve_gate(gate_id: str) -> dict[str, Any]:
        return updates.approve_gate(gate_id)
