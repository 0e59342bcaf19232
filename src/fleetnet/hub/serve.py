"""Run the fleet daemon in the foreground: the API on a unix socket (and optionally TCP)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import uvicorn

from fleetnet.hub.daemon import Hub, write_pid


def serve(home: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request to an agent is noise
    from fleetnet.api.app import build_app

    hub = Hub(home)
    write_pid(hub.paths)
    app = build_app(hub)
    hub.start_background()
    hub.paths.socket.unlink(missing_ok=True)
    servers = [uvicorn.Server(uvicorn.Config(app, uds=str(hub.paths.socket), log_level="warning"))]
    if port is not None:
        servers.append(uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning")))

    async def main() -> None:
        # uvicorn turns SIGTERM/SIGINT into should_exit of the server that caught it; stop the others too
        tasks = [asyncio.create_task(s.serve()) for s in servers]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for s in servers:
            s.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        hub.stop()
        hub.paths.socket.unlink(missing_ok=True)
        hub.paths.pid.unlink(missing_ok=True)
