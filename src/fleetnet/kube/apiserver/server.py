"""The API server process of one local cluster: HTTPS, authentication, routing, streaming.

It listens on the node address inside the cluster's control node namespace (where the cluster's
own components reach it, as ``https://<node>:6443``) and on a loopback port of the host (where the
hub and a user's kubectl reach it); both sockets are made before serving, each in its namespace.
Everything runs on one asyncio loop: handlers never await between a read and the write it
decides, and every commit reaches the watchers before the next request is looked at.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from fleetnet.kube import status as st
from fleetnet.kube.apiserver import auth, discovery
from fleetnet.kube.apiserver.admission import Admission
from fleetnet.kube.apiserver.bodies import MAX_BODY, encode
from fleetnet.kube.apiserver.call import Call, Reply
from fleetnet.kube.apiserver.handlers import Handlers, _prefix
from fleetnet.kube.apiserver.request import PathError, accepts_json, parse_path, wants
from fleetnet.kube.apiserver.storage import DEFAULT_WINDOW, Storage
from fleetnet.kube.apiserver.watch import Watcher, WatchSpec, bookmark, event_line
from fleetnet.kube.resources import REGISTRY, Registry
from fleetnet.kube.selectors import parse_field_selector, parse_label_selector

log = logging.getLogger(__name__)

BOOKMARK_EVERY = 10.0
DEFAULT_WATCH_TIMEOUT = 1800.0


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int
    netns: str | None = None


@dataclass(frozen=True, slots=True)
class ServerConfig:
    cluster: str
    store: Path
    tls_cert: Path
    tls_key: Path
    client_ca: Path
    sa_public: Path
    sa_private: Path
    service_cidr: str
    kubernetes_version: str
    advertise_address: str
    secure_port: int
    listen: tuple[Listen, ...]
    logs_dir: Path  # container logs: <ns>_<pod>.log
    fleet_prefix: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def read(path: Path) -> ServerConfig:
        d = json.loads(path.read_text())
        return ServerConfig(
            cluster=d["cluster"],
            store=Path(d["store"]),
            tls_cert=Path(d["tlsCert"]),
            tls_key=Path(d["tlsKey"]),
            client_ca=Path(d["clientCA"]),
            sa_public=Path(d["saPublic"]),
            sa_private=Path(d["saPrivate"]),
            service_cidr=d["serviceCIDR"],
            kubernetes_version=d["kubernetesVersion"],
            advertise_address=d["advertiseAddress"],
            secure_port=int(d["securePort"]),
            listen=tuple(Listen(x["host"], int(x["port"]), x.get("netns")) for x in d["listen"]),
            logs_dir=Path(d["logsDir"]),
            fleet_prefix=d.get("fleetPrefix", ""),
            extra=dict(d.get("extra") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "store": str(self.store),
            "tlsCert": str(self.tls_cert),
            "tlsKey": str(self.tls_key),
            "clientCA": str(self.client_ca),
            "saPublic": str(self.sa_public),
            "saPrivate": str(self.sa_private),
            "serviceCIDR": self.service_cidr,
            "kubernetesVersion": self.kubernetes_version,
            "advertiseAddress": self.advertise_address,
            "securePort": self.secure_port,
            "listen": [{"host": x.host, "port": x.port, "netns": x.netns} for x in self.listen],
            "logsDir": str(self.logs_dir),
            "fleetPrefix": self.fleet_prefix,
            "extra": self.extra,
        }


def _reply(r: Reply) -> web.Response:
    resp = web.Response(status=r.status, body=r.body, headers=r.headers)
    resp.content_type = r.content_type.split(";")[0]
    if ";" in r.content_type:
        resp.headers["Content-Type"] = r.content_type
    return resp


def _status_response(e: st.ApiError) -> web.Response:
    return web.Response(status=e.code or 500, body=encode(e.status), content_type="application/json")


HEALTH = ("/healthz", "/livez", "/readyz")


class ApiServer:
    def __init__(self, cfg: ServerConfig, registry: Registry = REGISTRY) -> None:
        self.cfg = cfg
        self.registry = registry
        self.storage = Storage(cfg.store, int(cfg.extra.get("compactWindow") or DEFAULT_WINDOW))
        self.sa_public = cfg.sa_public.read_bytes() if cfg.sa_public.exists() else None
        self.sa_private = cfg.sa_private.read_bytes() if cfg.sa_private.exists() else None
        self.admission = Admission(cfg.service_cidr, self._mint if self.sa_private else None)
        self.handlers = Handlers(self.storage, registry, self.admission)
        self.storage.load()
        self.authz = auth.Authorizer(self.storage)
        self.started = time.time()
        self._disc_api = encode(discovery.api_versions(f"{cfg.advertise_address}:{cfg.secure_port}"))
        self._disc_apis = encode(discovery.api_group_list(registry))
        self._agg_api = encode(discovery.aggregated(registry, legacy=True))
        self._agg_apis = encode(discovery.aggregated(registry, legacy=False))
        self._version = encode(version_info(cfg.kubernetes_version))

    def _mint(self, namespace: str, name: str, audiences: list[str], seconds: int) -> tuple[str, str]:
        from fleetnet.kube.apiserver.strategy import now_rfc3339
        from fleetnet.pki import tokens

        assert self.sa_private is not None
        sa = self.storage.get(f"/registry/serviceaccounts/{namespace}/{name}")
        uid = str(sa.obj["metadata"].get("uid", "")) if sa is not None else ""
        tok = tokens.mint(self.sa_private, namespace, name, uid, audiences, lifetime=seconds)
        return tok, now_rfc3339(time.time() + seconds)

    # ------------------------------------------------------------------ the app
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY + 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    def user_of(self, request: web.Request) -> auth.User:
        ssl_obj = request.transport.get_extra_info("ssl_object") if request.transport else None
        u = auth.from_peercert(ssl_obj.getpeercert() if ssl_obj is not None else None)
        if u is None:
            u = auth.from_bearer(request.headers.get("Authorization"), self.sa_public)
        return u or auth.ANONYMOUS

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        try:
            if path in HEALTH or path.startswith(tuple(h + "/" for h in HEALTH)):
                return web.Response(text="ok", content_type="text/plain")
            user = self.user_of(request)
            if user.is_anonymous:
                raise st.unauthorized()
            out = self.non_resource(request, path)
            if out is not None:
                return out
            try:
                info = parse_path(path, request.method, request.query)
            except PathError:
                raise st.not_found_path() from None
            res = info.resource
            verb = info.verb
            if not self.authz.allowed(user, verb, res.group, res.plural, info.subresource, info.namespace, info.name):
                reason = auth.forbidden_reason(user, verb, res.group, res.plural, info.subresource, info.namespace)
                raise st.forbidden(res.plural, res.group, info.name, reason)
            if request.method in ("POST", "PUT", "PATCH", "DELETE"):
                try:
                    body = await request.read()
                except web.HTTPRequestEntityTooLarge:
                    raise st.too_large(MAX_BODY) from None
                if len(body) > MAX_BODY:
                    raise st.too_large(MAX_BODY)
            else:
                body = b""
            if not accepts_json(request.headers.get("Accept")) and not self._special_accept(request):
                raise st.not_acceptable(["application/json", "application/yaml"])
            call = Call(info, request.query, request.headers, body, user.name, request.headers.get("User-Agent", ""))
            if verb == "watch":
                return await self.watch(request, call)
            if info.subresource in ("log", "exec"):
                from fleetnet.kube.apiserver import streams

                return await streams.handle(self, request, call)
            return _reply(self.route(call))
        except st.ApiError as e:
            return _status_response(e)
        except Exception as e:  # a bug must answer a Status, never a torn connection
            log.exception("%s %s failed", request.method, request.path)
            return _status_response(st.internal(str(e)))

    def _special_accept(self, request: web.Request) -> bool:
        h = request.headers.get("Accept")
        return any(wants(h, a) is not None for a in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList"))

    def route(self, call: Call) -> Reply:
        h = self.handlers
        verb = call.info.verb
        if verb == "get":
            return h.get(call)
        if verb == "list":
            return h.list(call)
        if verb == "create":
            return h.create(call)
        if verb == "update":
            return h.update(call)
        if verb == "patch":
            return h.patch(call)
        if verb == "delete":
            return h.delete(call)
        if verb == "deletecollection":
            return h.deletecollection(call)
        raise st.method_not_allowed()

    # ------------------------------------------------------------------ non-resource paths
    def non_resource(self, request: web.Request, path: str) -> web.StreamResponse | None:
        if request.method != "GET":
            return None
        accept = request.headers.get("Accept")
        agg = wants(accept, "APIGroupDiscoveryList", "apidiscovery.k8s.io")
        if path == "/version":
            return web.Response(body=self._version, content_type="application/json")
        if path == "/api":
            if agg is not None:
                return self._aggregated(self._agg_api, agg.params.get("v", "v2"))
            return web.Response(body=self._disc_api, content_type="application/json")
        if path == "/apis":
            if agg is not None:
                return self._aggregated(self._agg_apis, agg.params.get("v", "v2"))
            return web.Response(body=self._disc_apis, content_type="application/json")
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) == 2:
            doc = discovery.resource_list(self.registry, "", parts[1])
            if doc is None:
                raise st.not_found_path()
            return web.Response(body=encode(doc), content_type="application/json")
        if parts[:1] == ["apis"] and len(parts) == 2:
            doc = discovery.api_group(self.registry, parts[1])
            if doc is None:
                raise st.not_found_path()
            return web.Response(body=encode(doc), content_type="application/json")
        if parts[:1] == ["apis"] and len(parts) == 3:
            doc = discovery.resource_list(self.registry, parts[1], parts[2])
            if doc is None:
                raise st.not_found_path()
            return web.Response(body=encode(doc), content_type="application/json")
        if parts[:1] == ["openapi"]:
            return self.openapi(request, parts)
        return None

    def _aggregated(self, body: bytes, version: str) -> web.Response:
        if version == "v2beta1":
            body = body.replace(b"apidiscovery.k8s.io/v2", b"apidiscovery.k8s.io/v2beta1", 1)
        resp = web.Response(body=body)
        resp.headers["Content-Type"] = f"application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
        return resp

    def openapi(self, request: web.Request, parts: list[str]) -> web.Response:
        from fleetnet.kube import openapi

        if parts == ["openapi", "v2"]:
            accept = request.headers.get("Accept") or ""
            if "protobuf" in accept and "json" not in accept:
                resp = web.Response(body=openapi.openapi_v2_protobuf())
                # kube-openapi names the body octet-stream: Go's mime parser refuses the "@" of the
                # media type the client asks for
                resp.headers["Content-Type"] = "application/octet-stream"
                return resp
            return web.Response(body=openapi.openapi_v2_bytes(), content_type="application/json")
        if parts == ["openapi", "v3"]:
            return web.Response(body=openapi.openapi_v3_index_bytes(), content_type="application/json")
        if len(parts) >= 3 and parts[:2] == ["openapi", "v3"]:
            doc = openapi.openapi_v3_bytes("/".join(parts[2:]))
            if doc is None:
                raise st.not_found_path()
            resp = web.Response(body=doc, content_type="application/json")
            resp.headers["Cache-Control"] = "public, immutable"
            return resp
        raise st.not_found_path()

    # ------------------------------------------------------------------ watch
    async def watch(self, request: web.Request, call: Call) -> web.StreamResponse:
        res, info = call.info.resource, call.info
        q = call.query
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(q.get("fieldSelector"), res.plural)
        prefix = _prefix(res) + (f"{info.namespace}/" if res.namespaced and info.namespace else "")
        spec = WatchSpec(res, prefix, fields.exact_name(), labels, fields)
        table = wants(call.accept, "Table") is not None

        def render(typ: str, obj: dict[str, Any], raw: bytes) -> bytes:
            if table:
                t = self.handlers.table(res, [obj], call, str((obj.get("metadata") or {}).get("resourceVersion", "")))
                return event_line(typ, encode(t))
            return event_line(typ, raw)

        w = Watcher(self.storage, spec, render)
        bookmarks = q.get("allowWatchBookmarks", "").lower() in ("1", "true")
        send_initial = q.get("sendInitialEvents", "").lower() in ("1", "true")
        initial = w.start(q.get("resourceVersion"), send_initial, bookmarks)
        try:
            timeout = float(q.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        except ValueError:
            w.stop()
            raise st.bad_request(f"invalid timeoutSeconds: {q.get('timeoutSeconds')}") from None
        resp = web.StreamResponse(status=200)
        resp.content_type = "application/json"
        resp.enable_chunked_encoding()
        try:
            await resp.prepare(request)
            if initial:
                await resp.write(b"".join(initial))
            if initial and initial[-1].startswith(b'{"type":"ERROR"'):
                return resp
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    line = await asyncio.wait_for(w.queue.get(), timeout=min(left, BOOKMARK_EVERY))
                except TimeoutError:
                    if bookmarks:
                        await resp.write(bookmark(res, self.storage.rev))
                    continue
                if line is None:
                    break  # overflowed: the client relists, as with kube
                lines = [line]
                while not w.queue.empty():
                    nxt = w.queue.get_nowait()
                    if nxt is None:
                        break
                    lines.append(nxt)
                await resp.write(b"".join(lines))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            w.stop()
        return resp

    # ------------------------------------------------------------------ serving
    async def serve(self, sockets: list[socket.socket]) -> None:
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=True)
        await runner.setup()
        ctx = tls_context(self.cfg)
        for s in sockets:
            await web.SockSite(runner, s, ssl_context=ctx, shutdown_timeout=0.5).start()
        log.info("API server of %s serving on %s", self.cfg.cluster, [s.getsockname() for s in sockets])
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
            self.storage.close()


def version_info(kubernetes_version: str) -> dict[str, Any]:
    v = kubernetes_version.lstrip("v")
    major, minor = [*v.split("."), "0", "0"][:2]
    return {
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": str(max(0, int(minor) - 1)) if minor.isdigit() else minor,
        "gitVersion": f"v{v}",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def tls_context(cfg: ServerConfig) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
    ctx.load_verify_locations(str(cfg.client_ca))
    ctx.verify_mode = ssl.CERT_OPTIONAL  # no certificate: a token, or anonymous (401)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def listen_socket(lst: Listen) -> socket.socket:
    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((lst.host, lst.port))
        s.listen(512)
        s.setblocking(False)
        return s

    if lst.netns is None:
        return make()
    from fleetnet.local import netlink

    return netlink.call_in_netns(lst.netns, make)
