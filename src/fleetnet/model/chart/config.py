"""The ``cilium-config`` keys fleetnet owns, and what changing them means for the agents.

Cilium's install (its Helm release, or fleetnet's local driver) owns ``cilium-config``; fleetnet
writes only the ClusterMesh keys into it by server-side apply, as a partial object, so that its
field manager owns those keys and nothing else. The keys are exactly those the chart renders for
the values fleetnet sets (``install/kubernetes/cilium/templates/cilium-configmap.yaml``):

=================================  ========================================  ==========
key                                chart value                               chart from
=================================  ========================================  ==========
cluster-name                       ``cluster.name``                          1.16
cluster-id                         ``cluster.id`` (quoted)                   1.16
max-connected-clusters             ``clustermesh.maxConnectedClusters``      1.16
clustermesh-cache-ttl              ``clustermesh.cacheTTL`` (Go duration)    1.19
clustermesh-enable-endpoint-sync   ``clustermesh.enableEndpointSliceSync..`` 1.16
policy-default-local-cluster       ``clustermesh.policyDefaultLocalCluster`` 1.18
=================================  ========================================  ==========

The clustermesh config directory is not a cilium-config key: the chart gives it to the agent as
the env ``CILIUM_CLUSTERMESH_CONFIG=/var/lib/cilium/clustermesh/`` on the DaemonSet and mounts
``cilium-clustermesh`` there whether ClusterMesh is on or not, so fleetnet need not touch the
DaemonSet. (``clustermesh-default-global-namespace`` only appears in the 1.20 chart.)

Leaving: ``cilium clustermesh disable`` (cilium-cli ``DisableWithHelm``) only sets Helm
``clustermesh.useAPIServer=false``, ``clustermesh.config.enabled=false`` and
``clustermesh.config.clusters=[]``; it leaves ``cluster.name``, ``cluster.id`` and
``maxConnectedClusters`` (hence these keys) as they were, so the agents keep their identities and
need no restart. fleetnet frees the member's id when it leaves, so ``leave_cilium_config`` puts
back what the cluster had before it joined (``join_snapshot``), or the chart's defaults
(``cluster-id: "0"``, ``cluster-name: default``: ClusterMesh off) when that is unknown; a caller
that wants the CLI's behaviour passes the current name and id as ``prior``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from fleetnet.model.chart.inputs import ChartValues
from fleetnet.model.chart.meta import CONFIG_MAP, metadata
from fleetnet.model.chart.versions import ChartVersion
from fleetnet.model.kube_types import FrozenMap

CLUSTER_NAME = "cluster-name"
CLUSTER_ID = "cluster-id"
MAX_CONNECTED_CLUSTERS = "max-connected-clusters"
CACHE_TTL = "clustermesh-cache-ttl"
ENDPOINT_SYNC = "clustermesh-enable-endpoint-sync"
POLICY_DEFAULT_LOCAL_CLUSTER = "policy-default-local-cluster"

# What the agent assumes when a key is absent (pkg/defaults, pkg/clustermesh/types/option.go).
AGENT_DEFAULTS: Mapping[str, str] = {CLUSTER_NAME: "default", CLUSTER_ID: "0", MAX_CONNECTED_CLUSTERS: "255"}
# Keys the agent reads once at start-up: changing one needs a rollout restart of the cilium
# DaemonSet. cluster-name and cluster-id also re-create every identity (workloads should restart);
# max-connected-clusters must match the mesh's or remote connections are refused.
AGENT_RESTART_KEYS: tuple[str, ...] = (
    CLUSTER_NAME,
    CLUSTER_ID,
    MAX_CONNECTED_CLUSTERS,
    POLICY_DEFAULT_LOCAL_CLUSTER,
    CACHE_TTL,
)


def owned_keys(version: ChartVersion) -> tuple[str, ...]:
    """The cilium-config keys fleetnet sets on this Cilium version, in the chart's order."""
    keys = [CLUSTER_NAME, CLUSTER_ID, MAX_CONNECTED_CLUSTERS]
    if version.at_least(19):
        keys.append(CACHE_TTL)
    keys.append(ENDPOINT_SYNC)
    if version.at_least(18):
        keys.append(POLICY_DEFAULT_LOCAL_CLUSTER)
    return tuple(keys)


def chart_defaults(version: ChartVersion) -> dict[str, str]:
    """What the chart renders for these keys with its default values (values.yaml of that minor)."""
    defaults = {
        CLUSTER_NAME: "default",
        CLUSTER_ID: "0",
        MAX_CONNECTED_CLUSTERS: "255",
        CACHE_TTL: "0s",
        ENDPOINT_SYNC: "false",
        # 1.18 introduced the option off; 1.19 turned it on (the breaking change of upgrade.rst)
        POLICY_DEFAULT_LOCAL_CLUSTER: "true" if version.at_least(19) else "false",
    }
    return {k: defaults[k] for k in owned_keys(version)}


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()``: "0s", "30s", "1m30s", "1h0m0s", "1.5s", "500ms"."""
    ns = round(seconds * 1_000_000_000)
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns < 1_000_000_000:
        unit, size = ("ns", 1) if ns < 1_000 else ("µs", 1_000) if ns < 1_000_000 else ("ms", 1_000_000)
        return f"{sign}{_decimal(ns, size)}{unit}"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{hours}h" if hours else ""
    if hours or minutes:
        text += f"{minutes}m"
    return f"{sign}{text}{_decimal(rest, 1_000_000_000)}s"


def _decimal(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def cilium_config_data(values: ChartValues) -> dict[str, str]:
    """The keys and values fleetnet writes for this member."""
    data = {
        CLUSTER_NAME: values.cluster_name,
        CLUSTER_ID: str(values.cluster_id),
        MAX_CONNECTED_CLUSTERS: str(values.max_connected_clusters),
        CACHE_TTL: go_duration(values.cache_ttl_seconds),
        ENDPOINT_SYNC: _bool(values.endpoint_slice_sync),
        POLICY_DEFAULT_LOCAL_CLUSTER: _bool(values.policy_default_local_cluster),
    }
    return {k: data[k] for k in owned_keys(values.cilium_version)}


def cilium_config(values: ChartValues) -> dict[str, Any]:
    """The partial ``cilium-config`` ConfigMap to server-side apply at join (and at every resync).

    It keeps its owner's labels: fleetnet contributes keys to the object, it does not manage it
    (a Helm-installed cilium-config carries ``app.kubernetes.io/managed-by: Helm``).
    """
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(CONFIG_MAP, values.namespace, values.network, managed=False),
        "data": cilium_config_data(values),
    }


def join_snapshot(live_data: Mapping[str, str], version: ChartVersion) -> FrozenMap[str, str]:
    """What the cluster had in the keys fleetnet is about to own: keep it to restore on leave."""
    return FrozenMap((k, str(live_data[k])) for k in owned_keys(version) if k in live_data)


def leave_cilium_config_data(version: ChartVersion, prior: Mapping[str, str] | None = None) -> dict[str, str]:
    """The values to put back when the member leaves: ``prior`` where known, else the chart's defaults."""
    restored = chart_defaults(version)
    for key in restored:
        if prior is not None and key in prior:
            restored[key] = str(prior[key])
    return restored


def leave_cilium_config(
    version: ChartVersion, namespace: str, prior: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The partial ``cilium-config`` to apply when the member leaves (no fleetnet annotation left)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": namespace},
        "data": leave_cilium_config_data(version, prior),
    }


def _normal(key: str, value: str | None) -> str | None:
    if value is None:
        return AGENT_DEFAULTS.get(key)
    text = str(value).strip()
    if key in (CLUSTER_ID, MAX_CONNECTED_CLUSTERS) and text.isdigit():
        return str(int(text))  # the agent parses numbers: "01" is 1
    return text


def restart_reasons(live_data: Mapping[str, str], desired_data: Mapping[str, str]) -> tuple[str, ...]:
    """Why the cilium DaemonSet needs a rollout restart to apply ``desired_data``: one sentence per key.

    Only keys in ``desired_data`` count (fleetnet changes nothing else); an absent live key is the
    agent's default (cluster-name ``default``, cluster-id ``0``, max-connected-clusters ``255``).
    """
    reasons = []
    for key in AGENT_RESTART_KEYS:
        if key not in desired_data:
            continue
        before, after = _normal(key, live_data.get(key)), _normal(key, desired_data[key])
        if before != after:
            was = "unset" if before is None else repr(before)
            reasons.append(
                f"cilium-config {key} changes from {was} to {after!r}, which the agents read only at start-up"
            )
    return tuple(reasons)


def needs_rollout_restart(live_data: Mapping[str, str], desired_data: Mapping[str, str]) -> bool:
    """True when the agents must restart to pick up the ClusterMesh keys (cluster-name, cluster-id...)."""
    return bool(restart_reasons(live_data, desired_data))


def config_checksum(values: ChartValues) -> str:
    """Digest of the cilium-config keys the clustermesh-apiserver containers read through env."""
    text = f"{CLUSTER_NAME}={values.cluster_name}\n{CLUSTER_ID}={values.cluster_id}\n"
    return hashlib.sha256(text.encode()).hexdigest()


def unsupported_options(values: ChartValues) -> tuple[str, ...]:
    """Network options this member's Cilium cannot carry (its chart has no key for them): one sentence each."""
    v = values.cilium_version
    notes = []
    if values.cache_ttl_seconds > 0 and not v.at_least(19):
        notes.append(
            f"{values.cluster_name} runs Cilium {v}, which has no clustermesh-cache-ttl (Cilium 1.19 added it): "
            "the backends of an unreachable peer are kept until it comes back."
        )
    if values.policy_default_local_cluster and not v.at_least(18):
        notes.append(
            f"{values.cluster_name} runs Cilium {v}, which has no policy-default-local-cluster (Cilium 1.18 added "
            "it): policy selectors without a cluster label match endpoints of every cluster."
        )
    return tuple(notes)
