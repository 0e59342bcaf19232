"""The Kubernetes ↔ Cilium catalog and its upgrade rules."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleetnet.errors import InvalidInput
from fleetnet.plan.versions import (
    MESH_MINIMUM_KUBERNETES,
    Catalog,
    CiliumVersion,
    KubeVersion,
    load_catalog,
    supports_mesh,
)

CATALOG = load_catalog()


def test_the_catalog_covers_five_minors_with_several_patches_each() -> None:
    minors: dict[str, int] = {}
    for e in CATALOG.entries:
        minors[e.kubernetes.minor_version] = minors.get(e.kubernetes.minor_version, 0) + 1
    assert list(minors) == ["1.31", "1.32", "1.33", "1.34", "1.35"]
    assert all(n >= 3 for n in minors.values())
    assert [e.kubernetes for e in CATALOG.entries] == sorted(e.kubernetes for e in CATALOG.entries)


def test_bundled_cilium_per_minor() -> None:
    by_minor: dict[str, set[str]] = {}
    for e in CATALOG.entries:
        by_minor.setdefault(e.kubernetes.minor_version, set()).add(e.cilium.minor_version)
    assert by_minor == {
        "1.31": {"1.16"},
        "1.32": {"1.17"},
        "1.33": {"1.17", "1.18"},
        "1.34": {"1.18"},
        "1.35": {"1.19"},
    }
    assert str(CATALOG.cilium_for("1.33.2")) == "1.17.6"
    assert CATALOG.cilium_for(KubeVersion(1, 35, 0)) == CiliumVersion(1, 19, 0)
    with pytest.raises(InvalidInput, match="not in the version catalog"):
        CATALOG.cilium_for("1.36.0")


def test_every_supported_upgrade_moves_cilium_forward_by_at_most_one_minor() -> None:
    steps = set()
    for e in CATALOG.entries:
        for to in e.upgrades:
            after = CATALOG.cilium_for(to)
            assert after >= e.cilium, (e.kubernetes, to)
            assert e.cilium.minors_apart(after) <= 1, (e.kubernetes, to)
            if to.minor != e.kubernetes.minor:
                steps.add(e.cilium.minors_apart(after))
    assert 1 in steps  # some Kubernetes minor step does move Cilium by a minor


def test_upgrade_paths_are_patches_and_the_next_minor() -> None:
    assert CATALOG.can_upgrade("1.32.3", "1.32.9") is None
    assert CATALOG.can_upgrade("1.32.9", "1.33.0") is None
    assert CATALOG.can_upgrade("1.32.3", "1.33.6") is None
    assert CATALOG.can_upgrade("1.33.2", "1.33.2") is None  # nothing to do is not a problem
    assert "skips minor 1.33" in (CATALOG.can_upgrade("1.32.3", "1.34.0") or "")
    assert "downgrades are not supported" in (CATALOG.can_upgrade("1.33.2", "1.33.0") or "")
    assert "downgrades are not supported" in (CATALOG.can_upgrade("1.34.0", "1.33.6") or "")
    assert "1.36.1 is not in the version catalog" in (CATALOG.can_upgrade("1.35.2", "1.36.1") or "")
    assert "current Kubernetes 1.30.9 is not in the version catalog" in (CATALOG.can_upgrade("1.30.9", "1.31.0") or "")
    assert "not in the version catalog" in (CATALOG.can_upgrade("1.32.3", "one.two") or "")


def test_can_upgrade_agrees_with_the_listed_upgrades() -> None:
    for a, b in itertools.product(CATALOG.entries, repeat=2):
        ok = CATALOG.can_upgrade(a.kubernetes, b.kubernetes) is None
        assert ok == (b.kubernetes in a.upgrades or a == b)


def test_is_known() -> None:
    assert CATALOG.is_known("1.34.1") and CATALOG.is_known("v1.34.1")
    assert not CATALOG.is_known("1.34.2") and not CATALOG.is_known("garbage")


def test_mesh_minimum() -> None:
    assert MESH_MINIMUM_KUBERNETES == "1.32"
    assert not supports_mesh("1.31.8") and supports_mesh("1.32.0") and supports_mesh("2.0.0")
    assert [e.mesh_supported for e in CATALOG.entries][:5] == [False, False, False, False, True]


@pytest.mark.parametrize("text", ["1.33", "1.33.2.1", "a.b.c", "1.033.2", "", " ", "1..2"])
def test_bad_versions_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"major\.minor\.patch"):
        KubeVersion.parse(text)


@settings(max_examples=100)
@given(st.tuples(st.integers(0, 30), st.integers(0, 40), st.integers(0, 40)), st.tuples(*[st.integers(0, 40)] * 3))
def test_versions_order_numerically(a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
    va, vb = KubeVersion.parse(".".join(map(str, a))), KubeVersion.parse("v" + ".".join(map(str, b)))
    assert (va < vb) == (a < b)
    assert str(va) == ".".join(map(str, a))


def test_to_json_lists_versions_and_paths() -> None:
    doc = CATALOG.to_json()
    assert doc["meshMinimumKubernetes"] == "1.32"
    assert doc["versions"][0] == {
        "kubernetes": "1.31.0",
        "cilium": "1.16.1",
        "upgrades": ["1.31.2", "1.31.5", "1.31.8", "1.32.0", "1.32.3", "1.32.6", "1.32.9"],
        "meshSupported": False,
    }
    assert {"from": "1.34", "to": ["1.34", "1.35"]} in doc["upgradePaths"]


def _catalog(versions: list[tuple[str, str]], paths: list[tuple[str, list[str]]]) -> Catalog:
    data: dict[str, Any] = {
        "versions": [{"kubernetes": k, "cilium": c} for k, c in versions],
        "upgradePaths": [{"from": f, "to": t} for f, t in paths],
    }
    return Catalog.from_json(data)


def test_incoherent_catalogs_are_refused() -> None:
    base = [("1.31.0", "1.16.0"), ("1.32.0", "1.17.0"), ("1.33.0", "1.18.0")]
    assert _catalog(base, [("1.31", ["1.32"])]).can_upgrade("1.31.0", "1.32.0") is None
    with pytest.raises(InvalidInput, match="not to the same or the next"):
        _catalog(base, [("1.31", ["1.33"])])
    with pytest.raises(InvalidInput, match="unknown minor"):
        _catalog(base, [("1.30", ["1.31"])])
    with pytest.raises(InvalidInput, match="twice"):
        _catalog([*base, ("1.31.0", "1.16.1")], [])
    with pytest.raises(InvalidInput, match="malformed"):
        Catalog.from_json({"versions": []})
