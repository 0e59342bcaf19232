"""Everything a member's join writes, in the order to apply it, and what its leave removes.

The order makes each object find what it needs: the certificates and the users ConfigMap before
the pods that mount them; ``cilium-config`` (cluster-name, cluster-id) before the
clustermesh-apiserver pods read it through env; ``cilium-clustermesh`` last, so that the agents
are pointed at peers (or at the local KVStoreMesh cache) only once it exists. Leave deletes the
same objects in the reverse order: the agents drop their peers first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetnet.model.chart.access import cluster_role, cluster_role_binding, metrics_service, service, service_account
from fleetnet.model.chart.apiserver import deployment
from fleetnet.model.chart.config import cilium_config, unsupported_options
from fleetnet.model.chart.inputs import ChartValues
from fleetnet.model.chart.meta import CONFIG_MAP, ObjectRef
from fleetnet.model.chart.secrets import (
    ca_secret,
    certificate_secrets,
    clustermesh_secret,
    kvstoremesh_secret,
    users_config_map,
)


@dataclass(frozen=True, slots=True)
class JoinRendering:
    """The objects of one member's join (plain Kubernetes dicts, in apply order) and its leave set."""

    objects: tuple[dict[str, Any], ...]
    leave: tuple[ObjectRef, ...]  # what to delete when the member leaves, in delete order
    notes: tuple[str, ...]  # network options this member's Cilium cannot carry

    @property
    def refs(self) -> tuple[ObjectRef, ...]:
        return tuple(ObjectRef.of(o) for o in self.objects)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The rendered object of that kind and name (KeyError when join does not write it)."""
        for obj in self.objects:
            if obj["kind"] == kind and obj["metadata"]["name"] == name:
                return obj
        raise KeyError(f"{kind} {name}")


def _is_partial(ref: ObjectRef) -> bool:
    """Objects fleetnet only adds keys to: leave restores them instead of deleting them."""
    return ref.kind == "ConfigMap" and ref.name == CONFIG_MAP


def leave_refs(objects: Sequence[Mapping[str, Any]]) -> tuple[ObjectRef, ...]:
    """What a join that wrote ``objects`` leaves behind to delete: all of it but cilium-config, newest first."""
    return tuple(ref for ref in reversed([ObjectRef.of(o) for o in objects]) if not _is_partial(ref))


def stale_refs(previous: Iterable[ObjectRef], current: Iterable[ObjectRef]) -> tuple[ObjectRef, ...]:
    """Objects an earlier join wrote that the current one no longer does (e.g. KVStoreMesh turned off)."""
    now = set(current)
    return tuple(ref for ref in previous if ref not in now and not _is_partial(ref))


def render_join(values: ChartValues) -> JoinRendering:
    """Every object the chart renders for this member's ClusterMesh, plus the cilium-config keys."""
    objects: list[dict[str, Any] | None] = [
        ca_secret(values),
        *certificate_secrets(values),
        users_config_map(values),
        cilium_config(values),
        service_account(values),
        cluster_role(values),
        cluster_role_binding(values),
        service(values),
        metrics_service(values),
        kvstoremesh_secret(values),
        deployment(values),
        clustermesh_secret(values),
    ]
    # A JSON round trip: the renderers share constant sub-dicts, callers may mutate what they get,
    # and what the API server receives must be plain JSON anyway.
    rendered = tuple(json.loads(json.dumps(o)) for o in objects if o is not None)
    return JoinRendering(objects=rendered, leave=leave_refs(rendered), notes=unsupported_options(values))
