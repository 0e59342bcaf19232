"""The REST API of the fleet daemon (FastAPI; OpenAPI at /openapi.json).

Resource and field names follow Azure Fleet's: ``members`` with ``labels`` and ``meshProperties``,
``clusterMeshProfiles`` with ``memberSelector.byLabel`` and ``status``; ``apply`` is a long-running
operation (202 + an operation to poll). Errors are ``{"error": {"code", "message"}}`` with the
status code of the fleetnet error class.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fleetnet import __version__
from fleetnet.api import models
from fleetnet.errors import FleetnetError, InvalidInput
from fleetnet.hub.daemon import Hub


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def build_app(hub: Hub) -> FastAPI:
    app = FastAPI(
        title="fleetnet",
        version=__version__,
        description="Fleet manager for cross-cluster networking (Cilium ClusterMesh).",
    )

    @app.exception_handler(FleetnetError)
    async def fleetnet_error(_r: Request, e: FleetnetError) -> JSONResponse:
        return _error(e.status_code, type(e).__name__, str(e))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_r: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, "InvalidInput", f"request field {loc or '?'}: {first.get('msg', 'invalid')}.")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True, "version": __version__, "home": str(hub.paths.home), "prefix": hub.recorder.record.prefix}

    @app.get("/status")
    def status() -> dict[str, Any]:
        members = hub.fleet.list_members()
        return {
            "home": str(hub.paths.home),
            "members": len(members),
            "networks": [
                {
                    "name": p.name,
                    "state": p.status.state,
                    "members": sum(1 for m in members if m.mesh and m.mesh.profile == p.name),
                }
                for p in hub.fleet.list_profiles()
            ],
        }

    # ------------------------------------------------------------ members
    @app.get("/members")
    def list_members(clusterMeshProfile: str | None = None) -> list[dict[str, Any]]:
        ms = hub.fleet.list_members()
        if clusterMeshProfile:
            ms = [m for m in ms if m.mesh and m.mesh.profile == clusterMeshProfile]
        return [m.to_dict() for m in ms]

    @app.post("/members", status_code=201)
    def create_member(body: models.LocalMemberCreate) -> dict[str, Any]:
        m = hub.fleet.create_local_member(
            body.name,
            pod_cidr=body.pod_cidr,
            service_cidr=body.service_cidr,
            nodes=body.nodes,
            kubernetes_version=body.kubernetes_version,
            labels=body.labels,
            underlay=body.underlay,
            network_dataplane=body.network_dataplane,
            routing_mode=body.routing_mode,
            group=body.group,
            self_managed_clustermesh=body.self_managed_clustermesh,
        )
        return m.to_dict()

    @app.get("/members/{name}")
    def get_member(name: str) -> dict[str, Any]:
        return hub.fleet.get_member(name).to_dict()

    @app.patch("/members/{name}")
    def update_member(name: str, body: models.MemberUpdate) -> dict[str, Any]:
        return hub.fleet.update_member(name, labels=body.labels, group=body.group).to_dict()

    @app.delete("/members/{name}", status_code=200)
    def delete_member(name: str) -> dict[str, Any]:
        hub.fleet.delete_member(name)
        hub.forget_objects(name)
        return {"deleted": name}

    # ------------------------------------------------------------ cluster mesh profiles
    @app.get("/clusterMeshProfiles")
    def list_profiles() -> list[dict[str, Any]]:
        return [p.to_dict() for p in hub.fleet.list_profiles()]

    @app.put("/clusterMeshProfiles/{name}")
    def put_profile(name: str, body: models.ProfileCreate) -> dict[str, Any]:
        return hub.fleet.create_profile(name, body.member_selector.by_label, body.options).to_dict()

    @app.get("/clusterMeshProfiles/{name}")
    def get_profile(name: str) -> dict[str, Any]:
        return hub.fleet.get_profile(name).to_dict()

    @app.delete("/clusterMeshProfiles/{name}")
    def delete_profile(name: str) -> dict[str, Any]:
        hub.fleet.delete_profile(name)
        return {"deleted": name}

    @app.get("/clusterMeshProfiles/{name}/members")
    def profile_members(name: str, selector: bool = False) -> list[dict[str, Any]]:
        return [m.to_dict() for m in hub.fleet.profile_members(name, by_selector=selector)]

    @app.post("/clusterMeshProfiles/{name}/apply", status_code=202)
    def apply_profile(name: str, whatIf: bool = False) -> Any:
        if whatIf:
            rows = hub.mesh.what_if(name)
            members = {m.name: m for m in hub.fleet.list_members()}
            return JSONResponse(
                [
                    {
                        "action": r.action,
                        "name": r.name,
                        "meshMembershipState": r.mesh_state,
                        "errorMessage": r.error,
                        "labels": members[r.name].labels if r.name in members else {},
                    }
                    for r in rows
                ],
                status_code=200,
            )
        op = hub.mesh.start_apply(name)
        return JSONResponse(op, status_code=202, headers={"Location": f"/operations/{op['id']}"})

    @app.get("/operations/{op_id}")
    def get_operation(op_id: str) -> dict[str, Any]:
        return hub.mesh.get_operation(op_id)

    # ------------------------------------------------------------ credentials
    def local(name: str) -> Any:
        m = hub.fleet.get_member(name)
        if m.local is None:
            raise InvalidInput(f"member {name} is not a local cluster; use kubectl with its kubeconfig.")
        return m

    @app.post("/members/{name}/listClusterAdminCredential")
    def list_credentials(name: str) -> dict[str, Any]:
        """A kubeconfig for the member's API server as kubernetes-admin (Azure's listClusterAdminCredential)."""
        import base64

        m = local(name)
        path = hub.paths.cluster(m.name).kubeconfig("admin")
        if not path.exists():
            raise InvalidInput(f"member {name} has no Kubernetes API credentials yet.")
        return {"kubeconfigs": [{"name": "clusterAdmin", "value": base64.b64encode(path.read_bytes()).decode()}]}

    # ------------------------------------------------------------ cilium-style debugging
    @app.get("/members/{name}/cilium/{path:path}")
    async def cilium_get(name: str, path: str, request: Request) -> Any:
        m = local(name)
        q = "&".join(f"{k}={v}" for k, v in request.query_params.items())
        return await asyncio.to_thread(hub.driver.agent_get, m, f"/v1/{path}" + (f"?{q}" if q else ""))

    @app.post("/members/{name}/cilium/{path:path}")
    async def cilium_post(name: str, path: str, request: Request) -> Any:
        m = local(name)
        body = await request.json()
        return await asyncio.to_thread(hub.driver.agent_post, m, f"/v1/{path}", body)

    from fleetnet.api.updates import add_update_routes

    add_update_routes(app, hub)
    return app
