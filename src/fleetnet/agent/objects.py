"""The agent's view of its cluster: two API identities behind one reader.

The agent process is two components of a real node: the kubelet (``system:node:<name>``, which may
write pod status, Nodes and Leases) and cilium-agent (ServiceAccount ``kube-system/cilium``, which
may write only Cilium's own objects). Each has its own client and informers; reads and writes of a
kind go to the one that watches it, so each write is made — and authorized — as the component
that owns it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fleetnet.kube.objects import ClusterObjects, Key, Keys, Objs, Results, key_of


class AgentObjects:
    def __init__(self, *parts: ClusterObjects) -> None:
        self.parts = parts
        self._by_kind: dict[str, ClusterObjects] = {}
        for p in parts:
            for kind in p.informers:
                self._by_kind.setdefault(kind, p)

    def part(self, kind: str) -> ClusterObjects:
        p = self._by_kind.get(kind)
        if p is None:
            raise KeyError(f"{kind} is not watched by the agent")
        return p

    def list(self, kind: str, namespace: str | None = None) -> Objs:
        return self.part(kind).list(kind, namespace)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.part(kind).get(kind, namespace, name)

    def apply(self, objs: Iterable[dict[str, Any]]) -> Results:
        out: Results = []
        for o in objs:
            out += self.part(str(o["kind"])).apply([o])
        return out

    def update_status(self, key: Key, status: dict[str, Any]) -> bool:
        return self.part(key[0]).update_status(key, status)

    def delete(self, keys: Iterable[Key], grace_period: int | None = None) -> Keys:
        out: Keys = []
        for k in keys:
            out += self.part(k[0]).delete([k], grace_period=grace_period)
        return out

    def revision(self) -> int:
        return sum(p.revision() for p in self.parts)

    def wait_synced(self, timeout: float) -> bool:
        return all(p.wait_synced(timeout) for p in self.parts)

    def start(self) -> AgentObjects:
        for p in self.parts:
            p.start()
        return self

    def stop(self) -> None:
        for p in self.parts:
            p.stop()


__all__ = ["AgentObjects", "key_of"]
