"""Which Cilium chart a member gets: the version its ClusterMesh objects are rendered for.

The chart's ClusterMesh templates change between minors (new cilium-config keys, new container
arguments, the KVStoreMesh "local" certificate, the etcd listen addresses), so every renderer
asks this value which shape to produce. fleetnet renders the charts of Cilium 1.16 to 1.19 (the
minors of its version catalog); the differences are listed where they are used and in the
package docstring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fleetnet.errors import InvalidInput

# The Cilium minors whose chart (install/kubernetes/cilium, read at v1.16.6, v1.17.6, v1.18.6 and
# v1.19.6) this package reproduces.
SUPPORTED_MINORS: tuple[int, ...] = (16, 17, 18, 19)

_VERSION = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, slots=True, order=True)
class ChartVersion:
    """A Cilium release, e.g. 1.19.2 (a pre-release suffix such as ``-rc.1`` is kept for the tag)."""

    major: int
    minor: int
    patch: int
    prerelease: str = ""

    @classmethod
    def parse(cls, text: str | ChartVersion) -> ChartVersion:
        if isinstance(text, ChartVersion):
            return text
        m = _VERSION.match(text.strip())
        if m is None:
            raise InvalidInput(f"Cilium version {text!r} is not of the form major.minor.patch; write it like 1.19.2.")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), (m.group(4) or "")[1:])

    @classmethod
    def supported(cls, text: str | ChartVersion) -> ChartVersion:
        """The version, refused unless fleetnet can render its chart."""
        v = cls.parse(text)
        if v.major != 1 or v.minor not in SUPPORTED_MINORS:
            lo, hi = SUPPORTED_MINORS[0], SUPPORTED_MINORS[-1]
            raise InvalidInput(
                f"Cilium {v} is not supported: fleetnet renders the ClusterMesh objects of Cilium 1.{lo} to 1.{hi}."
            )
        return v

    def at_least(self, minor: int) -> bool:
        """True from Cilium 1.<minor> on (every supported version is 1.x)."""
        return (self.major, self.minor) >= (1, minor)

    @property
    def tag(self) -> str:
        """The image tag Cilium publishes, ``v1.19.2``."""
        return f"v{self}"

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}.{self.patch}"
        return f"{base}-{self.prerelease}" if self.prerelease else base
