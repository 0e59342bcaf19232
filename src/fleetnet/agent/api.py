"""The agent's API on a unix socket (as cilium-agent serves /var/run/cilium/cilium.sock).

Real HTTP, so the hub and debugging tools ask it the way they would ask Cilium; the routes mirror
cilium-dbg's: status, cluster (ClusterMesh), service, bpf lb, identity, policy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fleetnet.errors import FleetnetError


class _Mesh(Protocol):
    def status(self) -> Any: ...


class Served(Protocol):
    """What the socket API reads of the agent: its status, its mesh and the features that answer
    ``/v1/...`` (each may have ``api_get(name, query)`` and ``api_post(name, body)``)."""

    @property
    def mesh(self) -> _Mesh: ...

    @property
    def features(self) -> Sequence[object]: ...

    def status(self) -> Any: ...


def build_app(agent: Served) -> Starlette:
    async def healthz(_r: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def status(_r: Request) -> JSONResponse:
        return JSONResponse(agent.status())

    async def cluster(_r: Request) -> JSONResponse:
        return JSONResponse(agent.mesh.status())

    async def feature_get(r: Request) -> JSONResponse:
        name = r.path_params["path"]
        for f in agent.features:
            handler = getattr(f, "api_get", None)
            if handler is not None:
                out = await asyncio.to_thread(handler, name, dict(r.query_params))
                if out is not None:
                    return JSONResponse(out)
        return JSONResponse({"error": f"no such agent endpoint /v1/{name}"}, status_code=404)

    async def feature_post(r: Request) -> JSONResponse:
        name = r.path_params["path"]
        body: Any = await r.json()
        for f in agent.features:
            handler = getattr(f, "api_post", None)
            if handler is not None:
                try:
                    out = await asyncio.to_thread(handler, name, body)
                except FleetnetError as e:
                    return JSONResponse({"error": str(e)}, status_code=e.status_code)
                if out is not None:
                    return JSONResponse(out)
        return JSONResponse({"error": f"no such agent endpoint /v1/{name}"}, status_code=404)

    return Starlette(
        routes=[
            Route("/v1/healthz", healthz),
            Route("/v1/status", status),
            Route("/v1/cluster", cluster),
            Route("/v1/{path:path}", feature_get, methods=["GET"]),
            Route("/v1/{path:path}", feature_post, methods=["POST"]),
        ]
    )


async def serve_api(agent: Served, socket: Path) -> None:
    socket.unlink(missing_ok=True)
    config = uvicorn.Config(build_app(agent), uds=str(socket), log_level="warning", lifespan="off")
    await uvicorn.Server(config).serve()
