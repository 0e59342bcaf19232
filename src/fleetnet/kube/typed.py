"""Stored objects as typed values, for every reader of a cluster's object store (agent, exporter).

The store keeps ordinary Kubernetes JSON plus what the cluster's controllers add (owner references,
the kubelet's ``status.fleetnet`` bookkeeping); the strict manifest parser knows neither, so they are
removed before parsing.
"""

from __future__ import annotations

from typing import Any

from fleetnet.model.kube import object_from_dict


def stored(obj: dict[str, Any]) -> Any:
    meta = {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}
    out = dict(obj)
    out["metadata"] = meta
    if obj.get("kind") == "Pod" and isinstance(obj.get("status"), dict):
        out["status"] = {k: v for k, v in obj["status"].items() if k != "fleetnet"}
    return object_from_dict(out)
