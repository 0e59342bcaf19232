"""Fixtures of the datapath tests: a private bpffs, and a one-node topology per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetnet.datapath.loader import mount_bpffs, umount_bpffs
from tests.datapath.topology import Topology, make_topology


@pytest.fixture
def bpffs(tmp_path: Path) -> Iterator[Path]:
    """A bpffs mounted in this test's temporary directory, unmounted (pins and all) afterwards."""
    path = tmp_path / "bpffs"
    mount_bpffs(path)
    try:
        yield path
    finally:
        umount_bpffs(path)


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    topo = make_topology(tmp_path_factory.mktemp("datapath"))
    try:
        yield topo
    finally:
        topo.close()


@pytest.fixture
def net(topology: Topology) -> Topology:
    """The module's topology with no services, no policy, no enforcement and no conntrack."""
    dp = topology.datapath
    dp.services.sync({})
    for pod in topology.pods.values():
        dp.policy.replace_endpoint(pod.endpoint_id, [])
        dp.ipcache.upsert(pod.ip, pod.identity)
        dp.attach(topology.node, pod.host_if, pod.info())
    dp.conntrack.flush()
    return topology
