"""cilium-config: the keys per version, Go durations, the leave restore and the restart decision."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetnet.model.chart import (
    ChartVersion,
    chart_defaults,
    cilium_config,
    go_duration,
    join_snapshot,
    leave_cilium_config,
    needs_rollout_restart,
    owned_keys,
    restart_reasons,
    unsupported_options,
)
from tests.model.chart import values

V16, V17, V18, V19 = (ChartVersion.parse(v) for v in ("1.16.9", "1.17.6", "1.18.3", "1.19.2"))


def test_owned_keys_follow_the_chart_of_each_minor() -> None:
    # cilium-configmap.yaml: the ClusterMesh keys each minor's chart renders
    base = ("cluster-name", "cluster-id", "max-connected-clusters", "clustermesh-enable-endpoint-sync")
    assert owned_keys(V16) == base
    assert owned_keys(V17) == base
    assert owned_keys(V18) == (*base, "policy-default-local-cluster")
    assert owned_keys(V19) == (
        "cluster-name",
        "cluster-id",
        "max-connected-clusters",
        "clustermesh-cache-ttl",
        "clustermesh-enable-endpoint-sync",
        "policy-default-local-cluster",
    )


def test_partial_config_map() -> None:
    cm = cilium_config(values("1.19.2"))
    assert cm["metadata"] == {
        "name": "cilium-config",
        "namespace": "kube-system",
        "annotations": {"fleetnet.io/network": "blue"},
    }
    assert cm["data"] == {
        "cluster-name": "c1",
        "cluster-id": "1",
        "max-connected-clusters": "255",
        "clustermesh-cache-ttl": "30s",
        "clustermesh-enable-endpoint-sync": "false",
        "policy-default-local-cluster": "true",
    }
    assert all(isinstance(v, str) for v in cm["data"].values())


def test_chart_defaults() -> None:
    # values.yaml: cluster.name default, cluster.id 0, maxConnectedClusters 255, cacheTTL "0s";
    # policyDefaultLocalCluster false in 1.18, true in 1.19
    assert chart_defaults(V18)["policy-default-local-cluster"] == "false"
    assert chart_defaults(V19) == {
        "cluster-name": "default",
        "cluster-id": "0",
        "max-connected-clusters": "255",
        "clustermesh-cache-ttl": "0s",
        "clustermesh-enable-endpoint-sync": "false",
        "policy-default-local-cluster": "true",
    }


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (30, "30s"),
        (90, "1m30s"),
        (900, "15m0s"),
        (3600, "1h0m0s"),
        (3661.5, "1h1m1.5s"),
        (1.5, "1.5s"),
        (0.5, "500ms"),
        (0.0015, "1.5ms"),
        (0.000002, "2µs"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6, "ns": 1e-9}


def _parse_go_duration(text: str) -> float:
    parts = re.findall(r"([0-9.]+)(h|ms|µs|ns|m|s)", text)
    assert "".join(n + u for n, u in parts) == text
    return sum(float(n) * _UNIT[u] for n, u in parts)


@given(st.integers(min_value=0, max_value=10**7))
def test_go_duration_reads_back_as_the_same_milliseconds(millis: int) -> None:
    assert round(_parse_go_duration(go_duration(millis / 1000)) * 1000) == millis


def test_join_snapshot_and_leave_restore() -> None:
    live = {"cluster-name": "prod-eu", "cluster-id": "0", "ipam": "kubernetes", "policy-default-local-cluster": "false"}
    prior = join_snapshot(live, V19)
    assert dict(prior) == {"cluster-name": "prod-eu", "cluster-id": "0", "policy-default-local-cluster": "false"}
    leave = leave_cilium_config(V19, "kube-system", prior)
    assert leave["metadata"] == {"name": "cilium-config", "namespace": "kube-system"}
    assert leave["data"] == {
        "cluster-name": "prod-eu",
        "cluster-id": "0",
        "max-connected-clusters": "255",
        "clustermesh-cache-ttl": "0s",
        "clustermesh-enable-endpoint-sync": "false",
        "policy-default-local-cluster": "false",
    }
    # nothing recorded: the chart's defaults, ClusterMesh off
    assert leave_cilium_config(V19, "kube-system")["data"]["cluster-id"] == "0"


def test_leave_like_the_cli_keeps_name_and_id() -> None:
    # `cilium clustermesh disable` leaves cluster.name / cluster.id alone: pass them as prior
    data = leave_cilium_config(V19, "kube-system", {"cluster-name": "c1", "cluster-id": "1"})["data"]
    assert (data["cluster-name"], data["cluster-id"]) == ("c1", "1")
    assert not needs_rollout_restart(
        {"cluster-name": "c1", "cluster-id": "1"}, {"cluster-name": "c1", "cluster-id": "1"}
    )


def test_restart_when_name_or_id_changes() -> None:
    desired = cilium_config(values("1.19.2"))["data"]
    fresh = {"cluster-name": "default", "cluster-id": "0"}
    assert needs_rollout_restart(fresh, desired)
    reasons = restart_reasons(fresh, desired)
    assert reasons[0] == (
        "cilium-config cluster-name changes from 'default' to 'c1', which the agents read only at start-up"
    )
    assert any(r.startswith("cilium-config cluster-id changes from '0' to '1'") for r in reasons)
    # absent keys are the agent's defaults
    assert restart_reasons({}, {"cluster-name": "default", "cluster-id": "0"}) == ()
    # the agent reads numbers: "01" is 1
    assert not needs_rollout_restart({"cluster-id": "01"}, {"cluster-id": "1"})
    # keys fleetnet does not set do not count
    assert not needs_rollout_restart({"ipam": "kubernetes"}, {"cluster-name": "default"})


def test_no_restart_when_applied_again() -> None:
    desired = cilium_config(values("1.19.2"))["data"]
    assert not needs_rollout_restart(desired, desired)
    assert not needs_rollout_restart({**desired, "ipam": "cluster-pool"}, desired)


@given(
    name=st.sampled_from(["default", "c1", "c2"]),
    cid=st.integers(min_value=0, max_value=255),
    new_name=st.sampled_from(["c1", "c2"]),
    new_id=st.integers(min_value=1, max_value=255),
)
def test_restart_iff_name_or_id_differs(name: str, cid: int, new_name: str, new_id: int) -> None:
    live = {"cluster-name": name, "cluster-id": str(cid)}
    desired = {"cluster-name": new_name, "cluster-id": str(new_id)}
    assert needs_rollout_restart(live, desired) == (name != new_name or cid != new_id)


def test_unsupported_options_are_named() -> None:
    assert unsupported_options(values("1.19.2")) == ()
    notes = unsupported_options(values("1.17.6"))
    assert len(notes) == 2
    assert notes[0].startswith("c1 runs Cilium 1.17.6, which has no clustermesh-cache-ttl")
    assert "policy-default-local-cluster" in notes[1]
    assert unsupported_options(values("1.18.3", cache_ttl_seconds=0.0)) == ()
