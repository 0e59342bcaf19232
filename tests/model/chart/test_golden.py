"""Golden files: the whole join of member c1, rendered for fixed inputs, compared byte for byte.

A change to the rendering shows up as a diff of ``golden/*.yaml``: review it against the chart,
then rewrite the files with ``FLEETNET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/model/chart``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from fleetnet.model.chart import ChartValues, render_join
from tests.model.chart import GOLDEN, UPDATE_ENV, dump, updating, values

SCENARIOS: dict[str, Callable[[], ChartValues]] = {
    # the reference: Cilium 1.19, KVStoreMesh on (the chart's default), NodePort, two peers
    "1.19-kvstoremesh": lambda: values("1.19.2"),
    # no KVStoreMesh: agents dial the peers themselves; a LoadBalancer as AKS wants it; 511 clusters; HA
    "1.19-direct": lambda: values(
        "1.19.2",
        kvstoremesh=False,
        service_type="LoadBalancer",
        service_annotations={"service.beta.kubernetes.io/azure-load-balancer-internal": "true"},
        max_connected_clusters=511,
        replicas=2,
        cilium_endpoint_slice=True,
    ),
    # the chart's ips form: https://<peer>.mesh.cilium.io plus hostAliases on the Deployment
    "1.19-hostname": lambda: values("1.19.2", peer_addressing="hostname", node_port=32379),
    # a lone member, ClusterIP, the CA key kept in the hub (no cilium-ca)
    "1.19-alone": lambda: values("1.19.2", peers=(), service_type="ClusterIP", ca_key_in_cluster=False),
    "1.18-kvstoremesh": lambda: values("1.18.3"),
    "1.17-kvstoremesh": lambda: values("1.17.6"),
    "1.16-kvstoremesh": lambda: values("1.16.9"),
    "1.16-direct": lambda: values("1.16.9", kvstoremesh=False),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_render_matches_golden(name: str) -> None:
    path = GOLDEN / f"{name}.yaml"
    actual = dump(render_join(SCENARIOS[name]()).objects)
    if updating():
        path.write_text(actual)
    assert path.exists(), f"{path} is missing; create it with {UPDATE_ENV}=1."
    expected = path.read_text()
    assert expected == actual


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_is_valid_yaml_of_kubernetes_objects(name: str) -> None:
    docs = list(yaml.safe_load_all((GOLDEN / f"{name}.yaml").read_text()))
    assert docs
    for doc in docs:
        assert {"apiVersion", "kind", "metadata"} <= set(doc)
        assert doc["metadata"]["name"]


def test_no_stray_golden_files() -> None:
    """Every golden file belongs to a scenario, so that a renamed one does not linger unchecked."""
    on_disk = {p.stem for p in GOLDEN.glob("*.yaml")}
    assert on_disk == set(SCENARIOS)
