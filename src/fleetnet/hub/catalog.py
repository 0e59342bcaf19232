"""The version catalog as the hub sees it (Kubernetes version → bundled Cilium version)."""

from __future__ import annotations

from fleetnet.plan.versions import Catalog, load_catalog


class HubCatalog:
    """Adapts the pure catalog to the questions the hub asks."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or load_catalog()

    def is_known(self, kubernetes_version: str) -> bool:
        return bool(self.catalog.is_known(kubernetes_version))

    def cilium_for(self, kubernetes_version: str) -> str:
        return str(self.catalog.cilium_for(kubernetes_version))

    def default_kubernetes(self) -> str:
        """The newest patch of the third-newest minor: new local clusters leave room to upgrade."""
        minors = sorted(
            {e.kubernetes.minor_version for e in self.catalog.entries}, key=lambda m: tuple(map(int, m.split(".")))
        )
        target = minors[-3] if len(minors) >= 3 else minors[-1]
        return str(max(e.kubernetes for e in self.catalog.entries if e.kubernetes.minor_version == target))
