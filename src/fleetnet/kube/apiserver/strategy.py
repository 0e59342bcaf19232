"""What the API server does to an object on its way into storage, kind by kind.

kube-apiserver's registry strategies, for the kinds fleetnet serves: defaulting (the values a real
cluster fills in, so that ``kubectl get -o yaml`` looks the same), what create resets (status),
what an update of the main resource keeps (status) and of the status subresource keeps (spec and
most metadata), and when ``metadata.generation`` moves. Pure.
"""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

from fleetnet.kube.resources import Resource

SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def generate_name(base: str) -> str:
    """``generateName``: the base (cut to fit 63 characters) and five random safe characters."""
    return base[: 63 - 5] + "".join(secrets.choice(SAFE_ALPHABET) for _ in range(5))


# --- defaults ----------------------------------------------------------------------------------


def _container_defaults(c: dict[str, Any]) -> None:
    image = str(c.get("image", ""))
    tag = image.rsplit("/", 1)[-1].partition(":")[2] if "@" not in image else "digest"
    c.setdefault("imagePullPolicy", "Always" if tag in ("", "latest") else "IfNotPresent")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("resources", {})
    for p in c.get("ports") or []:
        if isinstance(p, dict):
            p.setdefault("protocol", "TCP")


def pod_spec_defaults(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if isinstance(c, dict):
            _container_defaults(c)


def _template_defaults(spec: dict[str, Any]) -> None:
    tpl = spec.setdefault("template", {})
    if isinstance(tpl, dict):
        tpl.setdefault("metadata", {})
        if isinstance(tpl.get("spec"), dict):
            pod_spec_defaults(tpl["spec"])


def defaults(kind: str, obj: dict[str, Any]) -> None:
    """Fill in what the API server defaults for ``kind`` (in place)."""
    spec = obj.get("spec")
    if kind == "Pod" and isinstance(spec, dict):
        pod_spec_defaults(spec)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        spec.setdefault(
            "tolerations",
            [
                {"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
                for k in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
            ],
        )
    elif kind == "Deployment" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        spec.setdefault(
            "strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
        )
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        _template_defaults(spec)
    elif kind == "ReplicaSet" and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        _template_defaults(spec)
    elif kind == "DaemonSet" and isinstance(spec, dict):
        spec.setdefault(
            "updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
        )
        spec.setdefault("revisionHistoryLimit", 10)
        _template_defaults(spec)
    elif kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("type") != "ExternalName":
            spec.setdefault("ipFamilyPolicy", "SingleStack")
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("internalTrafficPolicy", "Cluster")
        for p in spec.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
                if "port" in p:
                    p.setdefault("targetPort", p["port"])
    elif kind == "Namespace":
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        name = (obj.get("metadata") or {}).get("name")
        if name:
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
    elif kind == "EndpointSlice":
        for p in obj.get("ports") or []:
            if isinstance(p, dict):
                p.setdefault("protocol", "TCP")
    elif kind == "Event":
        obj.setdefault("reportingComponent", "")
        obj.setdefault("reportingInstance", "")


def initial_status(kind: str) -> dict[str, Any] | None:
    """What create leaves in ``status`` for kinds with a status subresource."""
    if kind == "Pod":
        return {"phase": "Pending", "qosClass": "BestEffort"}
    if kind == "Namespace":
        return {"phase": "Active"}
    if kind == "Service":
        return {"loadBalancer": {}}
    return {}


# --- create and update -------------------------------------------------------------------------


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def prepare_create(res: Resource, obj: dict[str, Any], uid: str, now: str) -> None:
    md = obj.setdefault("metadata", {})
    for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
        md.pop(k, None)
    md["uid"] = uid
    md["creationTimestamp"] = now
    if res.tracks_generation:
        md["generation"] = 1
    else:
        md.pop("generation", None)
    if res.has_status and not res.custom:
        status = initial_status(res.kind)
        if status is not None:
            obj["status"] = status
    elif res.has_status:
        obj.pop("status", None)
    if res.kind == "Secret" and isinstance(obj.get("stringData"), dict):
        _fold_string_data(obj)
    defaults(res.kind, obj)


def _fold_string_data(obj: dict[str, Any]) -> None:
    import base64

    data = dict(obj.get("data") or {})
    for k, v in (obj.pop("stringData") or {}).items():
        data[k] = base64.b64encode(str(v).encode()).decode()
    obj["data"] = data


# metadata a client may not change on update (kube copies them from the old object)
_IMMUTABLE_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


def prepare_update(res: Resource, new: dict[str, Any], old: dict[str, Any]) -> None:
    """An update of the main resource: status stays as it was (when it is a subresource), immutable
    metadata is carried over, generation moves when the spec changed, allocated values are kept."""
    md = new.setdefault("metadata", {})
    old_md = old.get("metadata") or {}
    for k in _IMMUTABLE_META:
        if k in old_md:
            md[k] = old_md[k]
        else:
            md.pop(k, None)
    if res.has_status:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    if res.kind == "Secret" and isinstance(new.get("stringData"), dict):
        _fold_string_data(new)
    if res.kind == "Service":
        _keep_allocated(new, old)
    defaults(res.kind, new)
    if res.tracks_generation and _spec_part(new) != _spec_part(old):
        md["generation"] = int(old_md.get("generation") or 1) + 1


def _keep_allocated(new: dict[str, Any], old: dict[str, Any]) -> None:
    spec, old_spec = new.setdefault("spec", {}), old.get("spec") or {}
    if not spec.get("clusterIP") and old_spec.get("clusterIP"):
        spec["clusterIP"] = old_spec["clusterIP"]
    if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
        spec["clusterIPs"] = list(old_spec["clusterIPs"])


def prepare_status_update(res: Resource, new: dict[str, Any], old: dict[str, Any]) -> None:
    """An update through ``/status``: only status changes; spec and metadata stay (ResetObjectMetaForStatus)."""
    status = new.get("status")
    keep = copy.deepcopy(old)
    new.clear()
    new.update(keep)
    if status is not None:
        new["status"] = status
    else:
        new.pop("status", None)
    del res


def immutable_changes(res: Resource, new: dict[str, Any], old: dict[str, Any]) -> list[tuple[str, Any]]:
    """Fields that may not change on update: (field path, new value)."""
    out: list[tuple[str, Any]] = []
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    if res.kind in ("Deployment", "ReplicaSet", "DaemonSet") and spec.get("selector") != old_spec.get("selector"):
        out.append(("spec.selector", spec.get("selector")))
    if (
        res.kind == "Service"
        and old_spec.get("clusterIP")
        and spec.get("clusterIP") not in (None, old_spec.get("clusterIP"))
        and "ExternalName" not in (old_spec.get("type"), spec.get("type"))
    ):
        out.append(("spec.clusterIPs[0]", spec.get("clusterIP")))
    if res.kind == "Pod":
        allowed = _pod_mutable(spec, old_spec)
        if not allowed:
            out.append(("spec", None))
    return out


def _pod_mutable(spec: dict[str, Any], old: dict[str, Any]) -> bool:
    """Pod updates may change only images, activeDeadlineSeconds, added tolerations and (when unset) nodeName."""

    def strip(s: dict[str, Any]) -> dict[str, Any]:
        s = copy.deepcopy(s)
        for key in ("containers", "initContainers"):
            for c in s.get(key) or []:
                if isinstance(c, dict):
                    c.pop("image", None)
        s.pop("activeDeadlineSeconds", None)
        s.pop("tolerations", None)
        s.pop("terminationGracePeriodSeconds", None)
        return s

    a, b = strip(spec), strip(old)
    if not b.get("nodeName"):
        a.pop("nodeName", None)
        b.pop("nodeName", None)
    return a == b


POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)
