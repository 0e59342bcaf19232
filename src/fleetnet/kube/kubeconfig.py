"""kubeconfig files: read one into the connection a context describes, build one, merge one into
another as ``az aks get-credentials`` and ``kind`` do.

Reading resolves what the client needs for one context: the server URL, the CA (data or file,
or insecure-skip-tls-verify), and the credentials (client certificate and key as data or files, a
bearer token or token file, or an exec credential plugin). Errors are one sentence naming the file
and what is wrong in it (``InvalidInput``).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fleetnet.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class ExecPlugin:
    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    api_version: str = "client.authentication.k8s.io/v1"


@dataclass(frozen=True, slots=True)
class Connection:
    """Everything needed to talk to one cluster as one user."""

    server: str
    context: str
    ca_pem: bytes | None = None
    insecure: bool = False
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    exec_plugin: ExecPlugin | None = None
    namespace: str = "default"
    tls_server_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _b64(value: str, what: str, source: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as e:
        raise InvalidInput(f"kubeconfig {source}: {what} is not valid base64 data.") from e


def _file(path: str, base: Path, what: str, source: str) -> bytes:
    p = Path(path) if os.path.isabs(path) else base / path
    try:
        return p.read_bytes()
    except OSError as e:
        raise InvalidInput(f"kubeconfig {source}: cannot read {what} {p}: {e.strerror}.") from e


def load_text(text: str, source: str) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InvalidInput(f"kubeconfig {source} does not parse as YAML: {e}.") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("contexts") or [], list):
        raise InvalidInput(f"kubeconfig {source} is not a kubeconfig (no contexts, clusters and users lists).")
    return doc


def load_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise InvalidInput(f"cannot read kubeconfig {p}: {e.strerror}.") from e
    return load_text(text, str(p))


def _named(doc: Mapping[str, Any], section: str, name: str, source: str) -> dict[str, Any]:
    for item in doc.get(section) or []:
        if isinstance(item, dict) and item.get("name") == name:
            inner = item.get(section[:-1])
            if not isinstance(inner, dict):
                raise InvalidInput(f"kubeconfig {source}: {section[:-1]} {name!r} has no {section[:-1]} settings.")
            return inner
    raise InvalidInput(f"kubeconfig {source}: the {section[:-1]} {name!r} is not defined.")


def context_names(doc: Mapping[str, Any]) -> list[str]:
    return [str(c.get("name")) for c in doc.get("contexts") or [] if isinstance(c, dict)]


def resolve(doc: Mapping[str, Any], context: str | None, source: str, base: Path | None = None) -> Connection:
    """The connection of ``context`` (default: current-context)."""
    base = base or Path.cwd()
    name = context or doc.get("current-context")
    if not name:
        raise InvalidInput(f"kubeconfig {source} has no current-context; name one with --context.")
    if name not in context_names(doc):
        known = ", ".join(context_names(doc)) or "none"
        raise InvalidInput(f"kubeconfig {source} has no context {name!r} (contexts: {known}).")
    ctx = _named(doc, "contexts", str(name), source)
    cluster = _named(doc, "clusters", str(ctx.get("cluster")), source)
    user = _named(doc, "users", str(ctx.get("user")), source) if ctx.get("user") else {}
    server = cluster.get("server")
    if not server or not str(server).startswith(("https://", "http://")):
        raise InvalidInput(f"kubeconfig {source}: cluster {ctx.get('cluster')!r} has no https:// server.")
    ca = None
    if cluster.get("certificate-authority-data"):
        ca = _b64(cluster["certificate-authority-data"], "certificate-authority-data", source)
    elif cluster.get("certificate-authority"):
        ca = _file(cluster["certificate-authority"], base, "certificate-authority", source)
    cert = key = None
    if user.get("client-certificate-data"):
        cert = _b64(user["client-certificate-data"], "client-certificate-data", source)
    elif user.get("client-certificate"):
        cert = _file(user["client-certificate"], base, "client-certificate", source)
    if user.get("client-key-data"):
        key = _b64(user["client-key-data"], "client-key-data", source)
    elif user.get("client-key"):
        key = _file(user["client-key"], base, "client-key", source)
    if (cert is None) != (key is None):
        raise InvalidInput(f"kubeconfig {source}: user {ctx.get('user')!r} has a client certificate without its key.")
    plugin = None
    ex = user.get("exec")
    if isinstance(ex, dict) and ex.get("command"):
        env = tuple((str(e.get("name")), str(e.get("value"))) for e in ex.get("env") or [] if isinstance(e, dict))
        plugin = ExecPlugin(
            str(ex["command"]), tuple(str(a) for a in ex.get("args") or []), env, str(ex.get("apiVersion") or "")
        )
    return Connection(
        server=str(server).rstrip("/"),
        context=str(name),
        ca_pem=ca,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        client_cert_pem=cert,
        client_key_pem=key,
        token=user.get("token"),
        token_file=user.get("tokenFile"),
        exec_plugin=plugin,
        namespace=str(ctx.get("namespace") or "default"),
        tls_server_name=cluster.get("tls-server-name"),
    )


def build(
    name: str,
    server: str,
    ca_pem: bytes,
    *,
    cert_pem: bytes | None = None,
    key_pem: bytes | None = None,
    token: str | None = None,
    user: str | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """A kubeconfig with one cluster, one user and one context, all called ``name`` (kind's shape)."""
    u: dict[str, Any] = {}
    if cert_pem is not None and key_pem is not None:
        u["client-certificate-data"] = base64.b64encode(cert_pem).decode()
        u["client-key-data"] = base64.b64encode(key_pem).decode()
    if token is not None:
        u["token"] = token
    ctx: dict[str, Any] = {"cluster": name, "user": user or name}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode()},
            }
        ],
        "users": [{"name": user or name, "user": u}],
        "contexts": [{"name": name, "context": ctx}],
        "current-context": name,
    }


def merge(
    into: dict[str, Any] | None, new: Mapping[str, Any], overwrite: bool, set_current: bool = True
) -> dict[str, Any]:
    """``new``'s clusters, users and contexts merged into ``into``; a name already there is refused
    (``InvalidInput``) unless ``overwrite``."""
    out: dict[str, Any] = dict(into or {"apiVersion": "v1", "kind": "Config", "preferences": {}})
    for section in ("clusters", "users", "contexts"):
        items = [dict(x) for x in out.get(section) or [] if isinstance(x, dict)]
        for item in new.get(section) or []:
            same = [i for i, x in enumerate(items) if x.get("name") == item.get("name")]
            if same and not overwrite:
                existing = items[same[0]]
                if existing != item:
                    raise InvalidInput(
                        f"a {section[:-1]} named {item.get('name')!r} already exists in the kubeconfig with other "
                        "settings; use --overwrite-existing to replace it."
                    )
                continue
            for i in reversed(same):
                items.pop(i)
            items.append(dict(item))
        out[section] = items
    if set_current and new.get("current-context"):
        out["current-context"] = new["current-context"]
    return out


def dump(doc: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False)


def write(path: Path, doc: Mapping[str, Any]) -> None:
    """Write atomically with mode 0600: a kubeconfig holds credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(dump(doc))
    os.replace(tmp, path)
