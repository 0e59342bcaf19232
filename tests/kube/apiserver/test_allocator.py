"""ClusterIP allocation: free, in range, never the kubernetes Service's address; refusals as kube's."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetnet.kube.apiserver.allocator import AllocationError, allocate, first_ip


@given(st.sets(st.integers(2, 250), max_size=100))
def test_cluster_ips_are_free_and_in_range(used_hosts: set[int]) -> None:
    used = {f"172.16.3.{h}" for h in used_hosts}
    ip = allocate("172.16.3.0/24", used)
    assert ip not in used and ip != first_ip("172.16.3.0/24")
    assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("172.16.3.0/24")


def test_requested_addresses_are_checked() -> None:
    assert allocate("10.96.0.0/16", [], "10.96.0.10") == "10.96.0.10"
    with pytest.raises(AllocationError) as e:
        allocate("10.96.0.0/16", [], "10.97.0.1")
    assert e.value.cause is not None
    assert e.value.cause.text() == (
        'spec.clusterIPs[0]: Invalid value: "10.97.0.1": failed to allocate IP 10.97.0.1: the provided IP '
        "(10.97.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/16"
    )
    with pytest.raises(AllocationError) as e:
        allocate("10.96.0.0/16", ["10.96.0.10"], "10.96.0.10")
    assert e.value.cause is not None and "provided IP is already allocated" in e.value.cause.text()


def test_a_full_range_says_so() -> None:
    with pytest.raises(AllocationError) as e:
        allocate("10.96.0.0/30", ["10.96.0.2"])
    assert e.value.cause is None and str(e.value) == "failed to allocate a serviceIP: range is full"
