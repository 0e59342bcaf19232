"""The Kubernetes driver: join, peers, options and leave for any member, through its API.

What it writes is what Cilium's Helm chart renders for ClusterMesh (``model/chart``), server-side
applied with field manager ``fleetnet``; what it reads is the cluster's own state (the ``cilium``
DaemonSet, ``cilium-config``, Nodes and CiliumNodes, the clustermesh-apiserver's Service). Local
clusters and real ones take this same path: a local cluster is "Cilium installed" as those
objects, and its agent and kubelet honour them as a real cilium-agent and kubelet would.

The member's certificates are issued once per join and kept in the hub's store, so re-rendering for
new peers changes only what changed; the ``cilium-config`` values before the join are kept too, so
that leave restores them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fleetnet.errors import SystemFailure
from fleetnet.hub.driver import PeerInfo
from fleetnet.kube.client import KubeClient
from fleetnet.kube.resources import REGISTRY, Resource
from fleetnet.kube.status import ApiError
from fleetnet.model import chart
from fleetnet.model.member import Member
from fleetnet.model.profile import ProfileOptions
from fleetnet.pki import clustermesh as meshcerts
from fleetnet.pki.certs import CertKeyPair
from fleetnet.store.sqlite import Store

log = logging.getLogger(__name__)

MESH_STATE = "kube-mesh"  # store kind: member → certificates, snapshot, what join wrote
NAMESPACE = "kube-system"
FIELD_MANAGER = "fleetnet"
READY_TIMEOUT = 120.0
ROLLOUT_TIMEOUT = 300.0


def _res(kind: str, api_version: str | None = None) -> Resource:
    r = REGISTRY.by_kind(kind, api_version)
    assert r is not None, kind
    return r


@dataclass(frozen=True, slots=True)
class MeshSettings:
    """How a member's clustermesh-apiserver is deployed: the chart values fleetnet chooses per member."""

    kvstoremesh: bool = True
    service_type: chart.inputs.ServiceType = "NodePort"
    node_port: int | None = None
    ca_key_in_cluster: bool = False


class KubernetesDriver:
    def __init__(
        self,
        store: Store,
        client: Callable[[Member], KubeClient],
        settings: Callable[[Member], MeshSettings],
        wait_rollout: Callable[[Member, KubeClient, float], None] | None = None,
    ) -> None:
        self.store = store
        self.client = client
        self.settings = settings
        self._wait_rollout = wait_rollout

    # ------------------------------------------------------------------ facts
    def facts(self, member: Member) -> chart.CiliumFacts:
        c = self.client(member)
        ds = c.get_or_none(_res("DaemonSet"), "cilium", NAMESPACE)
        cm = c.get_or_none(_res("ConfigMap"), "cilium-config", NAMESPACE)
        nodes, _ = c.list(_res("Node"))
        try:
            cnodes, _ = c.list(_res("CiliumNode"))
        except ApiError:
            cnodes = []
        return chart.read_cilium_facts(member.name, daemonset=ds, config_map=cm, nodes=nodes, cilium_nodes=cnodes)

    def ownership(self, member: Member, network: str | None) -> chart.MeshOwnership:
        c = self.client(member)
        dep = c.get_or_none(_res("Deployment"), "clustermesh-apiserver", NAMESPACE)
        sec = c.get_or_none(_res("Secret"), "cilium-clustermesh", NAMESPACE)
        return chart.clustermesh_ownership(member.name, dep, sec, network)

    # ------------------------------------------------------------------ state kept per member
    def _state(self, member: Member) -> dict[str, Any]:
        return self.store.get(MESH_STATE, member.name) or {}

    def _save(self, member: Member, state: dict[str, Any]) -> None:
        with self.store.tx() as t:
            t.put(MESH_STATE, member.name, state)

    @staticmethod
    def _pair(d: dict[str, str]) -> CertKeyPair:
        return CertKeyPair(d["cert"].encode(), d["key"].encode())

    def _certs(self, state: dict[str, Any]) -> chart.MemberCerts:
        c = state["certs"]
        return chart.MemberCerts(
            server=self._pair(c["server"]),
            admin=self._pair(c["admin"]),
            remote=self._pair(c["remote"]),
            local=self._pair(c["local"]) if c.get("local") else None,
        )

    def _values(
        self, member: Member, state: dict[str, Any], ca: CertKeyPair, peers: Sequence[PeerInfo]
    ) -> chart.ChartValues:
        s = self.settings(member)
        opts = ProfileOptions.from_dict(state.get("options") or {})
        return chart.ChartValues(
            cluster_name=member.name,
            cluster_id=int(state["clusterId"]),
            network=str(state["network"]),
            cilium_version=chart.ChartVersion.parse(state["ciliumVersion"]),
            ca=ca,
            certs=self._certs(state),
            peers=tuple(chart.Peer(p.name, p.cluster_id, p.endpoints) for p in peers),
            kvstoremesh=s.kvstoremesh,
            service_type=s.service_type,
            node_port=s.node_port,
            policy_default_local_cluster=opts.policy_default_local_cluster,
            cache_ttl_seconds=opts.service_cache_ttl_seconds,
            ca_key_in_cluster=s.ca_key_in_cluster,
            namespace=NAMESPACE,
        )

    # ------------------------------------------------------------------ join
    def join(self, member: Member, cluster_id: int, ca: CertKeyPair, options: ProfileOptions, profile: str) -> PeerInfo:
        c = self.client(member)
        facts = self.facts(member)
        if facts.problems:
            raise SystemFailure(facts.problems[0])
        version = facts.version.version or member.cilium_version
        cm = c.get_or_none(_res("ConfigMap"), "cilium-config", NAMESPACE) or {}
        state = self._state(member)
        if not state.get("snapshot"):
            state["snapshot"] = dict(chart.join_snapshot(cm.get("data") or {}, chart.ChartVersion.parse(version)))
        ips = self.node_addresses(c)
        state.update(
            network=profile,
            clusterId=cluster_id,
            ciliumVersion=version,
            options=options.to_dict(),
            certs={
                "server": _dump(meshcerts.server_cert(ca, ips, namespace=NAMESPACE)),
                "admin": _dump(meshcerts.admin_cert(ca, member.name)),
                "remote": _dump(meshcerts.remote_cert(ca, member.name)),
                "local": _dump(meshcerts.local_cert(ca, member.name)),
            },
        )
        self._save(member, state)
        self._apply(member, c, state, ca, [], live_config=cm.get("data") or {})
        self._wait_ready(member, c)
        endpoints = self.endpoints(member, c)
        return PeerInfo(name=member.name, cluster_id=cluster_id, endpoint=endpoints[0], endpoints=endpoints)

    def _apply(
        self,
        member: Member,
        c: KubeClient,
        state: dict[str, Any],
        ca: CertKeyPair,
        peers: Sequence[PeerInfo],
        live_config: dict[str, str] | None = None,
    ) -> None:
        rendering = chart.render_join(self._values(member, state, ca, peers))
        for note in rendering.notes:
            log.warning("%s: %s", member.name, note)
        previous = [chart.ObjectRef(*r) for r in state.get("written") or []]
        if live_config is None:
            live_config = (c.get_or_none(_res("ConfigMap"), "cilium-config", NAMESPACE) or {}).get("data") or {}
        for obj in rendering.objects:
            c.apply(obj, field_manager=FIELD_MANAGER, force=True)
        for ref in chart.stale_refs(previous, rendering.refs):
            self._delete(c, ref)
        state["written"] = [[r.api_version, r.kind, r.namespace, r.name] for r in rendering.refs]
        self._save(member, state)
        desired = rendering.get("ConfigMap", "cilium-config").get("data") or {}
        if chart.needs_rollout_restart(live_config, desired):
            self.rollout_restart(member, c)

    def _delete(self, c: KubeClient, ref: chart.ObjectRef) -> None:
        try:
            c.delete(c.resource(ref.kind, ref.api_version), ref.name, ref.namespace)
        except ApiError as e:
            if e.code != 404:
                raise

    # ------------------------------------------------------------------ peers, options, leave
    def set_peers(self, member: Member, ca: CertKeyPair, peers: Sequence[PeerInfo]) -> None:
        state = self._state(member)
        if not state.get("certs"):
            return  # not joined (yet): nothing to point at peers
        self._apply(member, self.client(member), state, ca, peers)

    def set_options(self, member: Member, options: ProfileOptions) -> None:
        state = self._state(member)
        if state.get("options") == options.to_dict():
            return
        state["options"] = options.to_dict()
        self._save(member, state)  # the next set_peers renders with them

    def leave(self, member: Member) -> None:
        state = self._state(member)
        c = self.client(member)
        for ref in reversed([chart.ObjectRef(*r) for r in state.get("written") or []]):
            if ref.kind == "ConfigMap" and ref.name == "cilium-config":
                continue
            self._delete(c, ref)
        version = chart.ChartVersion.parse(state.get("ciliumVersion") or member.cilium_version)
        live = (c.get_or_none(_res("ConfigMap"), "cilium-config", NAMESPACE) or {}).get("data") or {}
        restored = chart.leave_cilium_config(version, NAMESPACE, state.get("snapshot"))
        c.apply(restored, field_manager=FIELD_MANAGER, force=True)
        if chart.needs_rollout_restart(live, restored.get("data") or {}):
            self.rollout_restart(member, c)
        with self.store.tx() as t:
            t.delete(MESH_STATE, member.name)

    # ------------------------------------------------------------------ reading the cluster
    @staticmethod
    def node_addresses(c: KubeClient) -> list[str]:
        nodes, _ = c.list(_res("Node"))
        out = []
        for n in nodes:
            for a in (n.get("status") or {}).get("addresses") or []:
                if a.get("type") == "InternalIP" and a.get("address"):
                    out.append(str(a["address"]))
        return out

    def endpoints(self, member: Member, c: KubeClient, timeout: float = READY_TIMEOUT) -> tuple[str, ...]:
        """Where peers reach this member's clustermesh-apiserver, from its Service (as the cilium CLI finds it)."""
        deadline = time.monotonic() + timeout
        while True:
            svc = c.get_or_none(_res("Service"), "clustermesh-apiserver", NAMESPACE) or {}
            spec, status = svc.get("spec") or {}, svc.get("status") or {}
            port = next((p for p in spec.get("ports") or [] if p.get("port") == 2379), None)
            if spec.get("type") == "LoadBalancer":
                ingress = [
                    i.get("ip") or i.get("hostname") for i in (status.get("loadBalancer") or {}).get("ingress") or []
                ]
                if ingress and ingress[0]:
                    return tuple(f"https://{h}:2379" for h in ingress if h)
            elif spec.get("type") == "NodePort" and port is not None and port.get("nodePort"):
                ips = self.node_addresses(c)
                if ips:
                    return tuple(f"https://{ip}:{port['nodePort']}" for ip in ips)
            elif spec.get("type") == "ClusterIP":
                raise SystemFailure(
                    f"the clustermesh-apiserver Service of {member.name} is of type ClusterIP, which other clusters "
                    "cannot reach; use NodePort or LoadBalancer."
                )
            if time.monotonic() > deadline:
                raise SystemFailure(
                    f"the clustermesh-apiserver Service of {member.name} got no reachable address within "
                    f"{timeout:.0f} s (type {spec.get('type')}); see `kubectl -n kube-system describe svc "
                    "clustermesh-apiserver`."
                )
            time.sleep(0.2)

    def _wait_ready(self, member: Member, c: KubeClient, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            dep = c.get_or_none(_res("Deployment"), "clustermesh-apiserver", NAMESPACE) or {}
            st = dep.get("status") or {}
            want = (dep.get("spec") or {}).get("replicas", 1)
            if (
                st.get("observedGeneration", 0) >= dep.get("metadata", {}).get("generation", 1)
                and st.get("availableReplicas", 0) >= want
            ):
                return
            if time.monotonic() > deadline:
                raise SystemFailure(
                    f"the clustermesh-apiserver of {member.name} was not available within {timeout:.0f} s "
                    f"({st.get('availableReplicas', 0)}/{want} replicas); see `kubectl -n kube-system get pods "
                    "-l k8s-app=clustermesh-apiserver`."
                )
            time.sleep(0.1)

    # ------------------------------------------------------------------ the cilium DaemonSet
    def rollout_restart(self, member: Member, c: KubeClient) -> None:
        """What ``kubectl rollout restart ds/cilium`` does, then wait for the rollout."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        patch = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
        c.patch(_res("DaemonSet"), "cilium", patch, namespace=NAMESPACE, field_manager=FIELD_MANAGER)
        if self._wait_rollout is not None:
            self._wait_rollout(member, c, ROLLOUT_TIMEOUT)
        else:
            wait_daemonset(c, member.name, ROLLOUT_TIMEOUT)

    def upgrade_cilium(self, member: Member, version: str) -> None:
        """Cilium's images to ``version`` (agent, operator, clustermesh-apiserver), each rollout awaited."""
        c = self.client(member)
        tag = f"v{version.lstrip('v')}"
        targets = [
            ("DaemonSet", "cilium", "quay.io/cilium/cilium"),
            ("Deployment", "cilium-operator", "quay.io/cilium/operator"),
            ("Deployment", "clustermesh-apiserver", "quay.io/cilium/clustermesh-apiserver"),
        ]
        for kind, name, _repo in targets:
            obj = c.get_or_none(_res(kind), name, NAMESPACE)
            if obj is None:
                continue
            containers = []
            for section in ("initContainers", "containers"):
                for cont in obj["spec"]["template"]["spec"].get(section) or []:
                    image = str(cont.get("image", ""))
                    base = image.split("@", 1)[0].rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
                    containers.append((section, cont["name"], f"{base}:{tag}"))
            patch: dict[str, Any] = {"spec": {"template": {"spec": {}}}}
            for section, cname, image in containers:
                patch["spec"]["template"]["spec"].setdefault(section, []).append({"name": cname, "image": image})
            c.patch(
                _res(kind),
                name,
                patch,
                namespace=NAMESPACE,
                patch_type="application/strategic-merge-patch+json",
                field_manager=FIELD_MANAGER,
            )
            if kind == "DaemonSet":
                wait_daemonset(c, member.name, ROLLOUT_TIMEOUT)
            else:
                wait_deployment(c, member.name, name, ROLLOUT_TIMEOUT)


def _dump(p: CertKeyPair) -> dict[str, str]:
    return {"cert": p.cert_pem.decode(), "key": p.key_pem.decode()}


def wait_daemonset(c: KubeClient, cluster: str, timeout: float, name: str = "cilium") -> None:
    """``kubectl rollout status ds/<name>``: every scheduled pod updated and available."""
    deadline = time.monotonic() + timeout
    while True:
        ds = c.get_or_none(_res("DaemonSet"), name, NAMESPACE) or {}
        st = ds.get("status") or {}
        desired = st.get("desiredNumberScheduled", 0)
        if (
            st.get("observedGeneration", 0) >= (ds.get("metadata") or {}).get("generation", 1)
            and st.get("updatedNumberScheduled", 0) >= desired
            and st.get("numberAvailable", 0) >= desired
        ):
            return
        if time.monotonic() > deadline:
            raise SystemFailure(
                f"the rollout of DaemonSet {name} in {cluster} did not finish within {timeout:.0f} s "
                f"({st.get('updatedNumberScheduled', 0)}/{desired} updated, {st.get('numberAvailable', 0)} available)."
            )
        time.sleep(0.2)


def wait_deployment(c: KubeClient, cluster: str, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        d = c.get_or_none(_res("Deployment"), name, NAMESPACE) or {}
        st, want = d.get("status") or {}, (d.get("spec") or {}).get("replicas", 1)
        if (
            st.get("observedGeneration", 0) >= (d.get("metadata") or {}).get("generation", 1)
            and st.get("updatedReplicas", 0) >= want
            and st.get("availableReplicas", 0) >= want
            and st.get("replicas", 0) == st.get("updatedReplicas", 0)
        ):
            return
        if time.monotonic() > deadline:
            raise SystemFailure(f"the rollout of Deployment {name} in {cluster} did not finish within {timeout:.0f} s.")
        time.sleep(0.2)
