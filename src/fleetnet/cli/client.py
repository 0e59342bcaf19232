"""The CLI's client of the daemon's REST API (over the unix socket under the fleet home).

Third-party errors stop here: a missing daemon becomes DaemonNotRunning with the one sentence the
user needs; an API error becomes the fleetnet error of its code, with the server's sentence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from fleetnet import errors
from fleetnet.hub.paths import FleetPaths


class Client:
    def __init__(self, home: Path, timeout: float = 120.0) -> None:
        self.paths = FleetPaths(home)
        self.timeout = timeout
        self._client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        # one client for the life of the command; plain HTTP on a unix socket, so no CA bundle to load
        if self._client is None:
            transport = httpx.HTTPTransport(uds=str(self.paths.socket), verify=False)
            self._client = httpx.Client(transport=transport, base_url="http://fleetnet", timeout=self.timeout)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def alive(self) -> bool:
        if not self.paths.socket.exists():
            return False
        try:
            return self._http().get("/healthz", timeout=2.0).status_code == 200
        except (httpx.HTTPError, OSError):
            return False

    def request(self, method: str, path: str, **kw: Any) -> Any:
        if not self.paths.socket.exists():
            raise errors.DaemonNotRunning(
                f"no fleetnet daemon is running for {self.paths.home}; start it with `fleetnet up`."
            )
        try:
            r = self._http().request(method, path, **kw)
        except (httpx.ConnectError, FileNotFoundError, ConnectionRefusedError) as e:
            raise errors.DaemonNotRunning(
                f"no fleetnet daemon is running for {self.paths.home}; start it with `fleetnet up`."
            ) from e
        except httpx.HTTPError as e:
            raise errors.SystemFailure(f"the fleetnet daemon did not answer {method} {path}: {e}.") from e
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
                code, msg = err.get("code", ""), err.get("message", r.text)
            except (ValueError, KeyError, TypeError):
                code, msg = "", r.text
            cls = getattr(errors, code, None)
            if not (isinstance(cls, type) and issubclass(cls, errors.FleetnetError)):
                cls = {400: errors.InvalidInput, 404: errors.NotFound, 409: errors.Conflict}.get(
                    r.status_code, errors.SystemFailure
                )
            raise cls(msg)
        return r.json() if r.content else None

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)
