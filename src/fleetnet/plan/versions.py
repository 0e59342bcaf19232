"""The Kubernetes ↔ Cilium version catalog.

Cross-cluster networking bundles Cilium with the Kubernetes release (reference §2.1, seed
"Updating cross-cluster networking"): a member's Cilium changes only when its Kubernetes is
upgraded. The catalog says which Cilium each Kubernetes release brings and which upgrades are
supported, so that update runs can be pre-validated before they touch a cluster. The data lives in
``fleetnet/data/versions.json``; this module only reads and answers questions about it.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar, Self

from fleetnet.errors import InvalidInput

# Cross-cluster networking needs Kubernetes ≥ 1.32 (reference §2.2). A fixed rule of the feature,
# not catalog data, so it is a constant rather than a field of versions.json.
MESH_MINIMUM_KUBERNETES = "1.32"

_SEMVER = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_MINOR = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)$")


@dataclass(frozen=True, slots=True, order=True)
class SemVer:
    """major.minor.patch, ordered numerically (so 1.10.0 > 1.9.0)."""

    major: int
    minor: int
    patch: int

    product: ClassVar[str] = "a"

    @classmethod
    def parse(cls, text: str | SemVer) -> Self:
        if isinstance(text, cls):
            return text
        if isinstance(text, SemVer):
            return cls(text.major, text.minor, text.patch)
        m = _SEMVER.match(text.strip()) if isinstance(text, str) else None
        if m is None:
            raise InvalidInput(
                f"{cls.product} version {text!r} is not of the form major.minor.patch; write it like 1.33.2."
            )
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)))

    @property
    def minor_version(self) -> str:
        """``"1.33"`` for 1.33.2."""
        return f"{self.major}.{self.minor}"

    def minors_apart(self, other: SemVer) -> int:
        """How many minor versions separate two versions; a different major counts as far apart."""
        if self.major != other.major:
            return 1_000
        return abs(self.minor - other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True, slots=True, order=True)
class KubeVersion(SemVer):
    product: ClassVar[str] = "Kubernetes"


@dataclass(frozen=True, slots=True, order=True)
class CiliumVersion(SemVer):
    product: ClassVar[str] = "Cilium"


def supports_mesh(kubernetes: str | KubeVersion) -> bool:
    """True when this Kubernetes version may join a cross-cluster network (≥ 1.32)."""
    v = KubeVersion.parse(kubernetes)
    major, minor = (int(x) for x in MESH_MINIMUM_KUBERNETES.split("."))
    return (v.major, v.minor) >= (major, minor)


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One Kubernetes release, the Cilium bundled with it, and the releases it upgrades to directly."""

    kubernetes: KubeVersion
    cilium: CiliumVersion
    upgrades: tuple[KubeVersion, ...] = ()

    @property
    def mesh_supported(self) -> bool:
        return supports_mesh(self.kubernetes)

    def to_json(self) -> dict[str, Any]:
        return {
            "kubernetes": str(self.kubernetes),
            "cilium": str(self.cilium),
            "upgrades": [str(v) for v in self.upgrades],
            "meshSupported": self.mesh_supported,
        }


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every known Kubernetes release in ascending order, and the minors each minor may move to."""

    entries: tuple[CatalogEntry, ...]
    # (from minor, reachable minors) pairs, e.g. ("1.32", ("1.32", "1.33")).
    upgrade_paths: tuple[tuple[str, tuple[str, ...]], ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Catalog:
        """Build a catalog from the versions.json shape, checking that it is coherent."""
        try:
            raw_versions = list(data["versions"])
            raw_paths = list(data["upgradePaths"])
            pairs = [(KubeVersion.parse(v["kubernetes"]), CiliumVersion.parse(v["cilium"])) for v in raw_versions]
            paths = [(str(p["from"]), tuple(str(t) for t in p["to"])) for p in raw_paths]
        except (KeyError, TypeError) as e:
            raise InvalidInput(
                f"the version catalog is malformed ({e}); it needs 'versions' with kubernetes and cilium, "
                "and 'upgradePaths' with from and to."
            ) from e
        pairs.sort()
        kube = [k for k, _ in pairs]
        if len(set(kube)) != len(kube):
            raise InvalidInput("the version catalog lists a Kubernetes version twice; list each once.")
        minors = {k.minor_version for k in kube}
        for src, dsts in paths:
            if not _MINOR.match(src) or src not in minors:
                raise InvalidInput(f"the version catalog has an upgrade path from unknown minor {src!r}.")
            for dst in dsts:
                if dst not in minors or not _is_same_or_next_minor(src, dst):
                    raise InvalidInput(
                        f"the version catalog's upgrade path {src} → {dst} is not to the same or the next "
                        "known minor; only patch upgrades and one-minor steps are supported."
                    )
        reach = dict(paths)
        entries = tuple(
            CatalogEntry(
                kubernetes=k,
                cilium=c,
                upgrades=tuple(t for t in kube if t > k and t.minor_version in reach.get(k.minor_version, ())),
            )
            for k, c in pairs
        )
        return cls(entries=entries, upgrade_paths=tuple(paths))

    def to_json(self) -> dict[str, Any]:
        return {
            "meshMinimumKubernetes": MESH_MINIMUM_KUBERNETES,
            "versions": [e.to_json() for e in self.entries],
            "upgradePaths": [{"from": src, "to": list(dsts)} for src, dsts in self.upgrade_paths],
        }

    def entry(self, kubernetes: str | KubeVersion) -> CatalogEntry | None:
        try:
            v = KubeVersion.parse(kubernetes)
        except InvalidInput:
            return None
        for e in self.entries:
            if e.kubernetes == v:
                return e
        return None

    def is_known(self, kubernetes: str | KubeVersion) -> bool:
        return self.entry(kubernetes) is not None

    def cilium_for(self, kubernetes: str | KubeVersion) -> CiliumVersion:
        """The Cilium bundled with this Kubernetes release; InvalidInput when it is not in the catalog."""
        e = self.entry(kubernetes)
        if e is None:
            raise InvalidInput(
                f"Kubernetes {kubernetes} is not in the version catalog; choose one listed by `fleetnet versions`."
            )
        return e.cilium

    def can_upgrade(self, from_: str | KubeVersion, to: str | KubeVersion) -> str | None:
        """None when a member on ``from_`` may be upgraded to ``to`` in one run, else one sentence why not.

        Equal versions are fine: the member is already there and the run skips it.
        """
        src, dst = self.entry(from_), self.entry(to)
        if dst is None:
            return f"Kubernetes {to} is not in the version catalog; choose one listed by `fleetnet versions`."
        if src is None:
            return (
                f"the current Kubernetes {from_} is not in the version catalog, so no upgrade path from it "
                "is known; upgrade it outside fleetnet or pick a member on a listed version."
            )
        a, b = src.kubernetes, dst.kubernetes
        if b == a:
            return None
        if b < a:
            return (
                f"Kubernetes {b} is older than the current {a}, and downgrades are not supported; "
                "choose a newer version."
            )
        if b in src.upgrades:
            return None
        if b.major == a.major and b.minor > a.minor + 1:
            return (
                f"upgrading Kubernetes {a} to {b} skips minor {a.major}.{a.minor + 1}; "
                f"upgrade to a {a.major}.{a.minor + 1} release first."
            )
        return f"the version catalog has no upgrade path from Kubernetes {a} to {b}; see `fleetnet versions`."


def _is_same_or_next_minor(src: str, dst: str) -> bool:
    sa, sb = (int(x) for x in src.split("."))
    da, db = (int(x) for x in dst.split("."))
    return sa == da and db in (sb, sb + 1)


@functools.cache
def load_catalog() -> Catalog:
    """The catalog shipped with fleetnet (``fleetnet/data/versions.json``), read once."""
    text = resources.files("fleetnet.data").joinpath("versions.json").read_text(encoding="utf-8")
    return Catalog.from_json(json.loads(text))
