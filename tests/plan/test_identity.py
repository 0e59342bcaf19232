"""Identity ranges, reserved identities, stable allocation and remote identity validation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetnet.errors import Conflict, InvalidInput
from fleetnet.plan.identity import (
    RESERVED_IDENTITIES,
    ReservedIdentity,
    allocate,
    cluster_id_shift,
    cluster_of,
    identity_range,
    is_reserved,
    validate_remote_identity,
)
from fleetnet.plan.labels import LABEL_CLUSTER, Label, LabelSet, pod_security_labels


@pytest.mark.parametrize(
    ("cluster_id", "max_connected", "expected"),
    [
        (0, 255, (256, 65535)),
        (1, 255, (65536, 131071)),
        (3, 255, (196608, 262143)),
        (255, 255, (255 << 16, (256 << 16) - 1)),
        (0, 511, (256, 32767)),
        (3, 511, (3 << 15, (4 << 15) - 1)),
        (511, 511, (511 << 15, (1 << 24) - 1)),
    ],
)
def test_identity_range_is_ciliums(cluster_id: int, max_connected: int, expected: tuple[int, int]) -> None:
    assert identity_range(cluster_id, max_connected) == expected


def test_shift_and_cluster_of() -> None:
    assert cluster_id_shift(255) == 16 and cluster_id_shift(511) == 15
    assert cluster_of(199472) == 3  # the reference's example identity of cluster3
    assert cluster_of(2) == 0
    assert cluster_of(3 << 15, 511) == 3


@pytest.mark.parametrize(("cluster_id", "max_connected"), [(256, 255), (-1, 255), (1, 128)])
def test_bad_cluster_ids_are_refused(cluster_id: int, max_connected: int) -> None:
    with pytest.raises(InvalidInput):
        identity_range(cluster_id, max_connected)


def test_reserved_identities() -> None:
    assert ReservedIdentity.HOST == 1 and ReservedIdentity.INGRESS == 8
    assert RESERVED_IDENTITIES[6].to_cilium_key() == "reserved:remote-node=;"
    assert RESERVED_IDENTITIES[7].to_cilium_key() == "reserved:kube-apiserver=;"
    assert is_reserved(8) and not is_reserved(0) and not is_reserved(256)


def test_allocate_starts_above_the_bottom_and_reuses() -> None:
    a = pod_security_labels({"app": "a"}, "ns", "c1")
    b = pod_security_labels({"app": "b"}, "ns", "c1")
    ids: dict[LabelSet, int] = {}
    ids[a] = allocate(ids, a, 1)
    ids[b] = allocate(ids, b, 1)
    assert (ids[a], ids[b]) == (65537, 65538)
    assert allocate(ids, a, 1) == 65537
    # A freed id is taken again by the next new label set.
    del ids[a]
    assert allocate(ids, pod_security_labels({"app": "c"}, "ns", "c1"), 1) == 65537


def test_allocate_replaces_an_id_from_another_range() -> None:
    a = pod_security_labels({"app": "a"}, "ns", "c1")
    assert allocate({a: 65537}, a, 2) == 131073


class _FullRange(Mapping[LabelSet, int]):
    """Every id of cluster 1 in use, without building 65535 label sets."""

    def __getitem__(self, key: LabelSet) -> int:
        raise KeyError(key)

    def __iter__(self) -> Iterator[LabelSet]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def values(self) -> Any:
        low, high = identity_range(1)
        return range(low + 1, high + 1)


def test_allocate_refuses_when_the_range_is_full() -> None:
    with pytest.raises(Conflict, match="used all 65535 identities"):
        allocate(_FullRange(), pod_security_labels({}, "ns", "c1"), 1)


def test_validate_remote_identity() -> None:
    labels = LabelSet.from_cilium_key("k8s:app=baz;k8s:io.cilium.k8s.policy.cluster=cluster3;")
    assert validate_remote_identity(199472, labels, "cluster3", 3) is None
    assert "outside the range" in (validate_remote_identity(65537, labels, "cluster3", 3) or "")
    assert "expected cluster2" in (validate_remote_identity(199472, labels, "cluster2", 3) or "")
    no_cluster = LabelSet.from_cilium_key("k8s:app=baz;")
    assert "no io.cilium.k8s.policy.cluster" in (validate_remote_identity(199472, no_cluster, "cluster3", 3) or "")
    wrong_source = LabelSet((Label(LABEL_CLUSTER, "cluster3", "container"),))
    assert "source container" in (validate_remote_identity(199472, wrong_source, "cluster3", 3) or "")
    assert "outside 1..255" in (validate_remote_identity(199472, labels, "cluster3", 0) or "")
    # Reserved identities are not imported as remote identities.
    assert validate_remote_identity(2, labels, "cluster3", 3) is not None


_LABEL_SETS = st.builds(
    pod_security_labels,
    st.dictionaries(st.sampled_from(["app", "tier", "role"]), st.sampled_from(["a", "b", "c"]), max_size=3),
    st.sampled_from(["ns1", "ns2"]),
    st.just("cx"),
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(_LABEL_SETS, max_size=20),
    st.integers(0, 255),
    st.sampled_from([255, 511]),
)
def test_allocation_is_stable_in_range_and_injective(labels: list[LabelSet], cluster_id: int, mc: int) -> None:
    cluster_id = min(cluster_id, mc)
    low, high = identity_range(cluster_id, mc)
    ids: dict[LabelSet, int] = {}
    for ls in labels:
        got = allocate(ids, ls, cluster_id, mc)
        assert ids.setdefault(ls, got) == got  # the same labels keep their id
        assert low <= got <= high
        assert cluster_of(got, mc) == cluster_id
    assert len(set(ids.values())) == len(ids)  # different labels, different ids
    assert all(allocate(ids, ls, cluster_id, mc) == i for ls, i in ids.items())
