"""What the kubelet gives a container besides its process: volumes on disk and its environment.

Volumes (``secret``, ``configMap``, ``projected`` with secret, configMap and serviceAccountToken
sources, ``emptyDir``) are written under the pod's own folder, one directory per volume, as the
kubelet's volume manager does; a container's ``volumeMounts`` then say where in the container each
one appears, and since local containers share the host's filesystem, paths under a mount are
translated to the volume's directory (``translate``). Environment values come from ``value``,
``configMapKeyRef``, ``secretKeyRef`` and ``fieldRef``, and ``$(VAR)`` in command and args is
expanded, as the kubelet does.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

Getter = Callable[[str, str, str], dict[str, Any] | None]  # (kind, namespace, name) → object
TokenFn = Callable[[str, str, int], str]  # (namespace, service account, seconds) → token


class VolumeError(Exception):
    """A volume or env source the pod needs is missing (the kubelet's CreateContainerConfigError)."""


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _items(data: Mapping[str, bytes], items: Sequence[Mapping[str, Any]] | None) -> dict[str, bytes]:
    if not items:
        return dict(data)
    out = {}
    for it in items:
        if it.get("key") in data:
            out[str(it.get("path") or it["key"])] = data[it["key"]]
    return out


def _secret_data(obj: Mapping[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def _cm_data(obj: Mapping[str, Any]) -> dict[str, bytes]:
    out = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


def volume_files(
    vol: Mapping[str, Any], namespace: str, get: Getter, token: TokenFn | None, sa: str
) -> dict[str, bytes] | None:
    """The files of one volume (None: an emptyDir, or a kind the local kubelet does not provide)."""
    sources: list[Mapping[str, Any]] = []
    if "secret" in vol:
        s = vol["secret"]
        sources = [{"secret": {"name": s.get("secretName"), "items": s.get("items"), "optional": s.get("optional")}}]
    elif "configMap" in vol:
        sources = [{"configMap": vol["configMap"]}]
    elif "projected" in vol:
        sources = list((vol["projected"] or {}).get("sources") or [])
    else:
        return None
    files: dict[str, bytes] = {}
    for src in sources:
        if "secret" in src or "configMap" in src:
            kind = "Secret" if "secret" in src else "ConfigMap"
            ref = src.get("secret") or src.get("configMap") or {}
            obj = get(kind, namespace, str(ref.get("name")))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise VolumeError(f'{kind.lower()} "{ref.get("name")}" not found')
            data = _secret_data(obj) if kind == "Secret" else _cm_data(obj)
            files.update(_items(data, ref.get("items")))
        elif "serviceAccountToken" in src and token is not None:
            t = src["serviceAccountToken"]
            files[str(t.get("path") or "token")] = token(
                namespace, sa, int(t.get("expirationSeconds") or 3600)
            ).encode()
    return files


def materialize(pod: Mapping[str, Any], root: Path, get: Getter, token: TokenFn | None = None) -> dict[str, Path]:
    """Write every volume of ``pod`` under ``root`` (one directory each); returns volume name → directory."""
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    sa = spec.get("serviceAccountName") or "default"
    out: dict[str, Path] = {}
    for vol in spec.get("volumes") or []:
        name = str(vol.get("name"))
        d = root / name
        files = volume_files(vol, ns, get, token, sa)
        if files is None:
            d.mkdir(parents=True, exist_ok=True)  # emptyDir: lives as long as the pod
            out[name] = d
            continue
        d.mkdir(parents=True, exist_ok=True)
        wanted = set()
        for rel, data in files.items():
            _write(d / rel, data, 0o600)
            wanted.add(rel)
        for f in d.iterdir():  # keys removed from the Secret leave the volume, as the kubelet syncs it
            if f.is_file() and f.name not in wanted and not f.name.startswith("."):
                f.unlink()
        out[name] = d
    return out


def mounts(container: Mapping[str, Any], volumes: Mapping[str, Path]) -> dict[str, Path]:
    """The container's mount paths → the volumes' directories."""
    out = {}
    for m in container.get("volumeMounts") or []:
        v = volumes.get(str(m.get("name")))
        if v is not None:
            out[str(m.get("mountPath")).rstrip("/") or "/"] = v / str(m.get("subPath") or "")
    return out


def translate(text: str, mount_map: Mapping[str, Path]) -> str:
    """Paths inside the container (``/var/lib/etcd-secrets/tls.crt``) as they are on the host."""
    for mount in sorted(mount_map, key=len, reverse=True):
        if text == mount or text.startswith(mount + "/"):
            return str(mount_map[mount]) + text[len(mount) :]
        text = re.sub(rf"(?<=[=:,\s]){re.escape(mount)}(?=/|$)", str(mount_map[mount]), text)
    return text


def environment(
    container: Mapping[str, Any], pod: Mapping[str, Any], get: Getter, fields: Mapping[str, str]
) -> dict[str, str]:
    """The container's env: values, ConfigMap and Secret keys, pod fields (metadata.name, status.podIP, ...)."""
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    env: dict[str, str] = {}
    for e in container.get("env") or []:
        name = str(e.get("name"))
        if "value" in e:
            env[name] = expand(str(e.get("value") or ""), env)
            continue
        src = e.get("valueFrom") or {}
        if "fieldRef" in src:
            env[name] = fields.get(str(src["fieldRef"].get("fieldPath")), "")
        elif "configMapKeyRef" in src or "secretKeyRef" in src:
            kind = "ConfigMap" if "configMapKeyRef" in src else "Secret"
            ref = src.get("configMapKeyRef") or src.get("secretKeyRef") or {}
            obj = get(kind, ns, str(ref.get("name")))
            data = (_cm_data(obj) if kind == "ConfigMap" else _secret_data(obj)) if obj else {}
            if ref.get("key") in data:
                env[name] = data[ref["key"]].decode()
            elif not ref.get("optional"):
                raise VolumeError(f"couldn't find key {ref.get('key')} in {kind} {ns}/{ref.get('name')}")
    return env


def expand(text: str, env: Mapping[str, str]) -> str:
    """``$(VAR)`` → its value (unknown names stay as written, ``$$`` escapes), as the kubelet expands."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, text)


def remove(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
