"""Security identities and the ipcache of a local cluster (Cilium's CRD identity mode, emulated).

Local pods get a numeric identity per distinct set of security labels, allocated inside the
cluster's range (cluster id << 16) and kept as ``CiliumIdentity`` objects in the cluster's store,
so they are stable across agent restarts; each pod gets a ``CiliumEndpoint`` naming its identity,
which the clustermesh-apiserver exports as an ipcache entry. Remote identities and ipcache entries
arrive through the ClusterMesh watch and pass Cilium's validations (identity inside the remote's
range, cluster label naming the remote) or are skipped with a log line. The eBPF ipcache map holds
every local and remote pod IP with its identity.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fleetnet.agent.clustermesh import ClusterMesh
from fleetnet.agent.datapath import Datapath, endpoint_id
from fleetnet.agent.objects import AgentObjects
from fleetnet.datapath.maps import IpcacheEntry
from fleetnet.kube.objects import key_of
from fleetnet.kvstore.client import KeyValue
from fleetnet.model.cilium import IPIdentityPair
from fleetnet.model.cluster import ClusterConfig
from fleetnet.plan.identity import allocate, identity_range, validate_remote_identity
from fleetnet.plan.labels import LabelSet, pod_security_labels

log = logging.getLogger(__name__)

IDENTITY_KIND = "CiliumIdentity"
ENDPOINT_KIND = "CiliumEndpoint"


def identity_object(identity: int, labels: LabelSet) -> dict[str, Any]:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": IDENTITY_KIND,
        "metadata": {"name": str(identity)},
        "security-labels": {f"{lb.source}:{lb.key}": lb.value for lb in labels},
        "labelsKey": labels.to_cilium_key(),
    }


def endpoint_object(pod: dict[str, Any], endpoint_id: int, identity: int, labels: LabelSet) -> dict[str, Any]:
    st = pod.get("status") or {}
    return {
        "apiVersion": "cilium.io/v2",
        "kind": ENDPOINT_KIND,
        "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"]},
        "status": {
            "id": endpoint_id,
            "identity": {"id": identity, "labels": [str(lb) for lb in labels]},
            "networking": {"addressing": [{"ipv4": st.get("podIP")}], "node": st.get("hostIP")},
        },
    }


class Identities:
    uses_remote_state = True

    def __init__(
        self, objects: AgentObjects, mesh: ClusterMesh, config: Callable[[], ClusterConfig], datapath: Datapath
    ) -> None:
        self.objects = objects
        self.mesh = mesh
        self.config = config
        self.datapath = datapath
        self.local: dict[int, LabelSet] = {}
        self.pods: dict[str, tuple[int, LabelSet, dict[str, Any]]] = {}  # pod IP → (identity, labels, pod)
        self.remote_ids: dict[str, dict[int, LabelSet]] = {}
        self.remote_ips: dict[str, dict[str, int]] = {}  # cluster → ip → identity
        self.remote_pods: dict[str, dict[str, tuple[str, str]]] = {}  # cluster → ip → (namespace, pod)
        self._ipcache: dict[str, IpcacheEntry] | None = None
        mesh.handlers["identities"] = (self._id_upsert, self._id_delete)
        mesh.handlers["endpoints"] = (self._ip_upsert, self._ip_delete)

    # ---------------------------------------------------------------- remote
    def _remote_id(self, cluster: str) -> int | None:
        rc = self.mesh.remotes.get(cluster)
        return None if rc is None else rc.cluster_id

    def _id_upsert(self, cluster: str, kv: KeyValue) -> None:
        try:
            identity = int(kv.key.rsplit("/", 1)[1])
            labels = LabelSet.from_cilium_key(kv.value.decode())
        except Exception as e:
            log.warning("skipping invalid identity %s from %s: %s", kv.key, cluster, e)
            return
        cid = self._remote_id(cluster)
        reason = "unknown cluster id" if cid is None else validate_remote_identity(identity, labels, cluster, cid)
        if reason:
            log.warning("skipping identity %s from %s: %s", identity, cluster, reason)
            return
        self.remote_ids.setdefault(cluster, {})[identity] = labels

    def _id_delete(self, cluster: str, key: str) -> None:
        try:
            self.remote_ids.get(cluster, {}).pop(int(key.rsplit("/", 1)[1]), None)
        except ValueError:
            pass

    def _ip_upsert(self, cluster: str, kv: KeyValue) -> None:
        cid = self._remote_id(cluster)
        try:
            pair = IPIdentityPair.from_json(kv.value, kv.key, cluster=cluster, cluster_id=cid)
        except Exception as e:
            log.warning("skipping invalid ipcache entry %s from %s: %s", kv.key, cluster, e)
            return
        self.remote_ips.setdefault(cluster, {})[pair.prefix_string] = pair.peer_identity
        if pair.k8s_pod_name:
            self.remote_pods.setdefault(cluster, {})[pair.prefix_string] = (pair.k8s_namespace, pair.k8s_pod_name)

    def _ip_delete(self, cluster: str, key: str) -> None:
        ip = key.split("cilium/state/ip/v1/default/", 1)[-1]
        self.remote_ips.get(cluster, {}).pop(ip, None)
        self.remote_pods.get(cluster, {}).pop(ip, None)

    def remote_pod_identity(self, cluster: str, namespace: str, pod: str) -> int | None:
        for ip, who in self.remote_pods.get(cluster, {}).items():
            if who == (namespace, pod):
                return self.remote_ips.get(cluster, {}).get(ip)
        return None

    def known(self) -> dict[int, LabelSet]:
        """Every identity this cluster knows: its own and those of connected remotes."""
        out = dict(self.local)
        if self.config().mesh_enabled:
            for cluster, ids in self.remote_ids.items():
                if cluster in self.mesh.remotes:
                    out.update(ids)
        return out

    # ---------------------------------------------------------------- local allocation
    def reconcile(self) -> None:
        objs = self.objects
        cfg = self.config()
        namespaces = {n["metadata"]["name"]: n for n in objs.list("Namespace")}
        existing: dict[LabelSet, int] = {}
        for o in objs.list(IDENTITY_KIND):
            try:
                existing[LabelSet.from_cilium_key(o["labelsKey"])] = int(o["metadata"]["name"])
            except Exception:
                continue
        low, high = identity_range(cfg.cluster_id)
        pods: dict[str, tuple[int, LabelSet, dict[str, Any]]] = {}
        for p in objs.list("Pod"):
            st = p.get("status") or {}
            ip = st.get("podIP")
            if not ip or st.get("phase") not in ("Running", "Pending"):
                continue
            ns = p["metadata"]["namespace"]
            ns_labels = ((namespaces.get(ns) or {}).get("metadata") or {}).get("labels") or {}
            labels = pod_security_labels(p["metadata"].get("labels") or {}, ns, cfg.name, namespace_labels=ns_labels)
            identity = allocate(existing, labels, cfg.cluster_id)
            existing[labels] = identity
            pods[ip] = (identity, labels, p)
        in_use = {(i, lbl) for i, lbl, _ in pods.values()}
        want_ids = {str(i): identity_object(i, lbl) for i, lbl in in_use}
        have_ids = {o["metadata"]["name"]: o for o in objs.list(IDENTITY_KIND)}
        changed = [o for n, o in want_ids.items() if have_ids.get(n) != o]
        if changed:
            objs.apply(changed)
        stale = [key_of(o) for n, o in have_ids.items() if n not in want_ids or not low <= int(n) <= high]
        if stale:
            objs.delete(stale)
        want_eps = {}
        for ip, (i, lbl, p) in pods.items():
            o = endpoint_object(p, endpoint_id(ip), i, lbl)
            want_eps[key_of(o)] = o
        have_eps = {key_of(o): o for o in objs.list(ENDPOINT_KIND)}
        changed = [o for k, o in want_eps.items() if have_eps.get(k) != o]
        if changed:
            objs.apply(changed)
        gone = [k for k in have_eps if k not in want_eps]
        if gone:
            objs.delete(gone)
        self.local = {i: lbl for i, lbl in in_use}
        self.pods = pods
        dp = self.datapath
        if dp is not None:
            dp.identities = {ip: v[0] for ip, v in pods.items()}
            self._refresh_endpoints(dp)
            self._sync_ipcache(dp)

    def _refresh_endpoints(self, dp: Any) -> None:
        """Pods attached before their identity was allocated carry a placeholder: give them theirs."""
        from fleetnet.datapath.maps import EndpointInfo

        for ip, rec in dp.dp.endpoints.items().items():
            identity = dp.identities.get(ip)
            if identity is not None and rec.info.identity != identity:
                info = EndpointInfo(
                    rec.info.endpoint_id, identity, ip, rec.info.ingress_enforced, rec.info.egress_enforced
                )
                dp.dp.endpoints.upsert(rec.ifindex, info, rec.netns_inode)

    def _sync_ipcache(self, dp: Any) -> None:
        cid = self.config().cluster_id
        desired = {f"{ip}/32": IpcacheEntry(identity, cid) for ip, (identity, _l, _p) in self.pods.items()}
        if self.config().mesh_enabled:
            for cluster, ips in self.remote_ips.items():
                rc = self.mesh.remotes.get(cluster)
                if rc is None or rc.cluster_id is None:
                    continue
                for prefix, identity in ips.items():
                    cidr = prefix if "/" in prefix else f"{prefix}/32"
                    desired.setdefault(cidr, IpcacheEntry(identity, rc.cluster_id))
        if desired == self._ipcache:
            return
        if self._ipcache is None:
            dp.dp.ipcache.sync(desired)  # first pass: make the pinned map exactly what we want
        else:
            # afterwards only the difference: a full sync reads back and rewrites the whole map
            for cidr, entry in desired.items():
                if self._ipcache.get(cidr) != entry:
                    dp.dp.ipcache.upsert(cidr, entry.identity, entry.cluster_id)
            for cidr in self._ipcache.keys() - desired.keys():
                dp.dp.ipcache.delete(cidr)
        self._ipcache = desired

    def status(self) -> dict[str, Any]:
        remote = sum(len(v) for v in self.remote_ids.values())
        return {"summary": f"{len(self.local)} local identities, {remote} remote", "local": len(self.local)}

    def api_get(self, path: str, _query: dict[str, str]) -> Any:
        if path != "identity":
            return None
        out = [
            {"id": i, "cluster": self.config().name, "labels": lbl.to_cilium_key()}
            for i, lbl in sorted(self.local.items())
        ]
        for cluster, ids in sorted(self.remote_ids.items()):
            out.extend({"id": i, "cluster": cluster, "labels": lbl.to_cilium_key()} for i, lbl in sorted(ids.items()))
        return out
