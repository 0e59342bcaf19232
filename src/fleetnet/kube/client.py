"""The one Kubernetes client of fleetnet: the hub's driver, the agent, the controllers, the
clustermesh-apiserver and the tests all speak to API servers — local or real — through it.

A thin synchronous client over httpx that speaks the plain REST API with JSON: objects are dicts,
resources come from the registry (or, for kinds it does not know, from the server's discovery),
errors are the server's ``Status`` as ``ApiError`` and transport failures ``Unreachable``; nothing
from httpx leaks out. Credentials are those of a kubeconfig context: client certificates, bearer
tokens (files are re-read when they change) and exec credential plugins (AKS's kubelogin, EKS's
aws CLI), as client-go's ``rest.Config`` resolves them.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from fleetnet.errors import InvalidInput
from fleetnet.kube import kubeconfig
from fleetnet.kube.kubeconfig import Connection
from fleetnet.kube.resources import REGISTRY, Resource
from fleetnet.kube.status import ApiError, Unreachable

USER_AGENT = "fleetnet/0.1"
JSON = "application/json"


def _ssl_context(conn: Connection, cert: bytes | None, key: bytes | None) -> ssl.SSLContext | bool:
    if conn.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(cadata=conn.ca_pem.decode() if conn.ca_pem else None)
    if cert is not None and key is not None:
        # ssl loads a client key only from files: write them to a private directory, load, remove
        d = tempfile.mkdtemp(prefix="fleetnet-kc-")
        try:
            os.chmod(d, 0o700)
            cp, kp = Path(d) / "c.pem", Path(d) / "k.pem"
            fd = os.open(kp, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
            cp.write_bytes(cert)
            ctx.load_cert_chain(str(cp), str(kp))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return ctx


class KubeClient:
    def __init__(self, conn: Connection, timeout: float = 30.0, user_agent: str = USER_AGENT) -> None:
        self.conn = conn
        self.timeout = timeout
        self.user_agent = user_agent
        self._lock = threading.Lock()
        self._token: str | None = conn.token
        self._token_expiry = 0.0
        self._token_file_mtime = 0.0
        self._discovered: dict[tuple[str, str], Resource] = {}
        cert, key = conn.client_cert_pem, conn.client_key_pem
        if conn.exec_plugin is not None:
            cert, key = self._exec_credentials(cert, key)
        self._http = httpx.Client(
            base_url=conn.server,
            verify=_ssl_context(conn, cert, key),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": user_agent, "Accept": JSON},
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )

    @staticmethod
    def from_kubeconfig(path: str | os.PathLike[str], context: str | None = None, **kw: Any) -> KubeClient:
        doc = kubeconfig.load_file(path)
        return KubeClient(kubeconfig.resolve(doc, context, str(path), Path(path).parent), **kw)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ credentials
    def _exec_credentials(self, cert: bytes | None, key: bytes | None) -> tuple[bytes | None, bytes | None]:
        status = self._run_plugin()
        if status.get("clientCertificateData") and status.get("clientKeyData"):
            return status["clientCertificateData"].encode(), status["clientKeyData"].encode()
        return cert, key

    def _run_plugin(self) -> dict[str, Any]:
        p = self.conn.exec_plugin
        assert p is not None
        env = dict(os.environ)
        env.update(dict(p.env))
        info = {
            "apiVersion": p.api_version or "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "spec": {"interactive": False},
        }
        env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
        try:
            out = subprocess.run([p.command, *p.args], capture_output=True, text=True, env=env, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise InvalidInput(f"the kubeconfig's credential plugin {p.command} could not run: {e}.") from e
        if out.returncode != 0:
            raise InvalidInput(
                f"the kubeconfig's credential plugin {p.command} failed ({out.returncode}): {out.stderr.strip()[:300]}"
            )
        try:
            status = dict(json.loads(out.stdout).get("status") or {})
        except ValueError as e:
            raise InvalidInput(f"the kubeconfig's credential plugin {p.command} printed no ExecCredential.") from e
        if status.get("token"):
            self._token = str(status["token"])
            exp = status.get("expirationTimestamp")
            self._token_expiry = _parse_time(exp) if exp else float("inf")
        return status

    def _auth_header(self) -> dict[str, str]:
        with self._lock:
            if self.conn.token_file:
                try:
                    m = os.stat(self.conn.token_file).st_mtime
                    if m != self._token_file_mtime:
                        self._token = Path(self.conn.token_file).read_text().strip()
                        self._token_file_mtime = m
                except OSError:
                    pass
            elif self.conn.exec_plugin is not None and self._token and time.time() > self._token_expiry - 60:
                self._run_plugin()
            return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    # ------------------------------------------------------------------ plain requests
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = JSON,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        h = {**self._auth_header(), **(headers or {})}
        if data is not None:
            h["Content-Type"] = content_type
        try:
            r = self._http.request(
                method, path, params=_params(params), content=data, headers=h, timeout=timeout or self.timeout
            )
        except httpx.HTTPError as e:
            raise Unreachable(
                f"the Kubernetes API at {self.conn.server} does not answer: {e or type(e).__name__}."
            ) from e
        return _decode(r)

    def get_bytes(self, path: str) -> bytes:
        """The body of a GET as received, not decoded (benchmarks time the server's part with it)."""
        try:
            r = self._http.get(path, headers=self._auth_header(), timeout=self.timeout)
        except httpx.HTTPError as e:
            raise Unreachable(f"the Kubernetes API at {self.conn.server} does not answer: {e}.") from e
        if r.status_code >= 400:
            _decode(r)
        return r.content

    def version(self) -> dict[str, Any]:
        return dict(self.request("GET", "/version"))

    # ------------------------------------------------------------------ resources
    def resource(self, kind: str, api_version: str | None = None) -> Resource:
        r = REGISTRY.by_kind(kind, api_version)
        if r is not None:
            return r
        if api_version is None:
            raise InvalidInput(f"the kind {kind!r} is unknown to fleetnet; give its apiVersion.")
        found = self._discovered.get((api_version, kind))
        if found is None:
            found = self._discover(api_version, kind)
        return found

    def _discover(self, api_version: str, kind: str) -> Resource:
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{api_version}" if group else f"/api/{version}"
        doc = self.request("GET", path)
        for item in doc.get("resources") or []:
            if item.get("kind") == kind and "/" not in item.get("name", ""):
                r = Resource(
                    group,
                    version,
                    kind,
                    item["name"],
                    item.get("singularName") or kind.lower(),
                    bool(item.get("namespaced")),
                    custom=True,
                )
                self._discovered[(api_version, kind)] = r
                return r
        raise ApiError(404, "NotFound", f'the server doesn\'t have a resource type "{kind}" in {api_version}')

    def _res_of(self, obj: Mapping[str, Any]) -> Resource:
        return self.resource(str(obj.get("kind")), str(obj.get("apiVersion") or "") or None)

    @staticmethod
    def _ns(res: Resource, namespace: str | None) -> str | None:
        return namespace if res.namespaced else None

    def get(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        return dict(self.request("GET", res.path(self._ns(res, namespace), quote(name))))

    def get_or_none(self, res: Resource, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self.get(res, name, namespace)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every matching object (following ``continue``) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit}
        while True:
            doc = self.request("GET", res.path(self._ns(res, namespace)), params=params)
            for it in doc.get("items") or []:
                it.setdefault("kind", res.kind)
                it.setdefault("apiVersion", res.api_version)
                items.append(it)
            cont = (doc.get("metadata") or {}).get("continue")
            if not cont:
                return items, str((doc.get("metadata") or {}).get("resourceVersion", ""))
            params["continue"] = cont

    def create(
        self, obj: Mapping[str, Any], *, field_manager: str | None = None, dry_run: bool = False
    ) -> dict[str, Any]:
        res = self._res_of(obj)
        ns = (obj.get("metadata") or {}).get("namespace") or ("default" if res.namespaced else None)
        params = {"fieldManager": field_manager, "dryRun": "All" if dry_run else None}
        return dict(self.request("POST", res.path(self._ns(res, ns)), params=params, body=obj))

    def replace(
        self, obj: Mapping[str, Any], *, subresource: str | None = None, field_manager: str | None = None
    ) -> dict[str, Any]:
        res = self._res_of(obj)
        md = obj.get("metadata") or {}
        ns = md.get("namespace") or ("default" if res.namespaced else None)
        path = res.path(self._ns(res, ns), quote(str(md["name"])), subresource)
        return dict(self.request("PUT", path, params={"fieldManager": field_manager}, body=obj))

    def patch(
        self,
        res: Resource,
        name: str,
        patch: Any,
        *,
        namespace: str | None = None,
        patch_type: str = "application/merge-patch+json",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
    ) -> dict[str, Any]:
        params = {"fieldManager": field_manager, "force": "true" if force else None}
        path = res.path(self._ns(res, namespace), quote(name), subresource)
        return dict(self.request("PATCH", path, params=params, body=patch, content_type=patch_type))

    def apply(self, obj: Mapping[str, Any], *, field_manager: str = "fleetnet", force: bool = True) -> dict[str, Any]:
        """Server-side apply of ``obj`` (create or merge, field ownership kept by the server)."""
        res = self._res_of(obj)
        md = obj.get("metadata") or {}
        ns = md.get("namespace") or ("default" if res.namespaced else None)
        return self.patch(
            res,
            str(md["name"]),
            json.dumps(obj).encode(),
            namespace=ns,
            patch_type="application/apply-patch+yaml",
            field_manager=field_manager,
            force=force,
        )

    def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        grace_period: int | None = None,
        propagation: str | None = None,
        preconditions: Mapping[str, str] | None = None,
    ) -> dict[str, Any] | None:
        """Delete; None if it was already gone."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period is not None:
            body["gracePeriodSeconds"] = grace_period
        if propagation:
            body["propagationPolicy"] = propagation
        if preconditions:
            body["preconditions"] = dict(preconditions)
        try:
            return dict(self.request("DELETE", res.path(self._ns(res, namespace), quote(name)), body=body))
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    # ------------------------------------------------------------------ watch
    def watch(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        bookmarks: bool = True,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Events as (type, object) until the server ends the watch; an ERROR event raises its Status."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "labelSelector": label_selector,
            "fieldSelector": field_selector,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true" if bookmarks else None,
        }
        timeout = httpx.Timeout(timeout_seconds + 30.0, connect=10.0)
        try:
            with self._http.stream(
                "GET",
                res.path(self._ns(res, namespace)),
                params=_params(params),
                headers=self._auth_header(),
                timeout=timeout,
            ) as r:
                if r.status_code >= 400:
                    r.read()
                    _decode(r)
                for line in r.iter_lines():
                    if not line:
                        continue
                    ev = json.loads(line)
                    typ, obj = ev.get("type"), ev.get("object") or {}
                    if typ == "ERROR":
                        raise ApiError.from_status(int(obj.get("code") or 500), obj)
                    yield str(typ), obj
        except httpx.HTTPError as e:
            raise Unreachable(f"the watch of {res.plural} at {self.conn.server} broke: {e or type(e).__name__}.") from e


def _params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    return {k: v for k, v in params.items() if v is not None}


def _decode(r: httpx.Response) -> Any:
    try:
        body = r.json() if r.content else None
    except ValueError:
        body = r.text
    if r.status_code >= 400:
        raise ApiError.from_status(r.status_code, body)
    return body


def _parse_time(text: str) -> float:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time() + 300
