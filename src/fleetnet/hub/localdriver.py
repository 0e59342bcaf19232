"""The local driver: clusters emulated on this host, built from network namespaces and processes.

Names: every network namespace of a fleet starts with its random prefix (``local/topology.py``
names them) so that ``down`` can find them all, and two fleets (or two test runs) never collide. The agent and the
clustermesh-apiserver of a cluster run inside its first node's namespace (host network), so they
reach the other clusters over the underlay exactly as a real node would.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import httpx

from fleetnet.errors import InvalidInput, SystemFailure
from fleetnet.hub.driver import PeerInfo, RemoteStatus
from fleetnet.hub.paths import ClusterPaths, FleetPaths
from fleetnet.hub.record import Recorder
from fleetnet.kube import kubeconfig
from fleetnet.kube.client import KubeClient
from fleetnet.kube.status import ApiError
from fleetnet.kvstore import config as etcdconfig
from fleetnet.kvstore.server import EtcdServerSpec
from fleetnet.kvstore.server import argv as etcd_argv
from fleetnet.local import cilium_install, kubeinit, netlink, procs, topology
from fleetnet.model.cluster import ClusterConfig, MeshConfig, NodeConfig, write_atomic
from fleetnet.model.member import Member
from fleetnet.model.profile import ProfileOptions
from fleetnet.pki import certs
from fleetnet.pki import clustermesh as meshcerts
from fleetnet.pki.certs import CertKeyPair
from fleetnet.plan import cidr
from fleetnet.store.sqlite import Store

log = logging.getLogger(__name__)

UNDERLAY = "underlay"
APISERVER_PORT = 2379
KUBE_API_TIMEOUT = 30.0
# a local cluster's processes, in start order; the clustermesh-apiserver's two join them in a network
CLUSTER_ROLES = ("kube-apiserver", "controller-manager", "agent")
MESH_ROLES = ("etcd", "exporter")


def cluster_owns(prefix: str, cluster: str, netns: str) -> bool:
    """Node and pod namespaces of one cluster ('_' cannot occur in cluster names)."""
    sep = topology.SEP
    return netns.startswith((f"{prefix}{sep}n{sep}{cluster}{sep}", f"{prefix}{sep}p{sep}{cluster}{sep}"))


class LocalDriver:
    def __init__(self, paths: FleetPaths, store: Store, recorder: Recorder) -> None:
        self.paths = paths
        self.store = store
        self.recorder = recorder
        self.prefix = recorder.record.prefix
        self._ul_lock = threading.Lock()
        self._clients: dict[str, httpx.Client] = {}
        self._kube: dict[str, KubeClient] = {}
        self._kc_lock = threading.Lock()

    # ---------------------------------------------------------------- underlays and nodes
    def _underlay(self, name: str) -> topology.UnderlaySpec:
        with self._ul_lock:
            with self.store.tx() as t:
                d = t.get(UNDERLAY, name)
                if d is None:
                    index = len(t.names(UNDERLAY))
                    d = {"index": index, "subnet": cidr.underlay_subnet(index), "used": []}
                    t.put(UNDERLAY, name, d)
            spec = topology.underlay_spec(self.prefix, name, str(d["subnet"]))
            topology.ensure_underlay(spec)
            return spec

    def _alloc_ips(self, underlay: str, n: int) -> list[str]:
        with self.store.tx() as t:
            d = t.get(UNDERLAY, underlay)
            assert d is not None
            used = set(d["used"])
            out: list[str] = []
            for _ in range(n):
                try:
                    ip = topology.allocate_underlay_ip(d["subnet"], used)
                except InvalidInput as e:
                    raise SystemFailure(f"underlay {underlay!r} has no free addresses left.") from e
                used.add(ip)
                out.append(ip)
            d["used"] = sorted(used)
            t.put(UNDERLAY, underlay, d)
        return out

    def _free_ips(self, underlay: str, ips: Sequence[str]) -> None:
        with self.store.tx() as t:
            d = t.get(UNDERLAY, underlay)
            if d is not None:
                d["used"] = sorted(set(d["used"]) - set(ips))
                t.put(UNDERLAY, underlay, d)

    def cluster_paths(self, name: str) -> ClusterPaths:
        return self.paths.cluster(name)

    def config(self, member: Member) -> ClusterConfig:
        return ClusterConfig.read(self.cluster_paths(member.name).config)

    def create_cluster(self, member: Member) -> None:
        loc = member.local
        assert loc is not None
        cp = self.cluster_paths(member.name)
        for d in (cp.root, cp.logs, cp.run, cp.clustermesh):
            d.mkdir(parents=True, exist_ok=True)
        # the agents mount the fleet's bpffs; record it first so that `down` unmounts it
        self.recorder.add_mount(str(self.paths.bpffs(self.prefix)))
        ul = self._underlay(loc.underlay)
        ips = self._alloc_ips(loc.underlay, loc.nodes)
        pod_cidrs = cidr.node_cidrs(loc.pod_cidr, loc.nodes)
        specs = [
            topology.node_spec(self.prefix, member.name, f"{member.name}-node{j + 1}", ul, ips[j], pod_cidrs[j])
            for j in range(loc.nodes)
        ]
        nodes = tuple(NodeConfig(name=s.name, netns=s.netns, ip=s.ip, pod_cidr=s.pod_cidr) for s in specs)
        for s in specs:
            topology.add_node(s)
        topology.install_routes(topology.cluster_routes(specs))
        cfg = ClusterConfig(
            name=member.name,
            fleet_prefix=self.prefix,
            pod_cidr=loc.pod_cidr,
            service_cidr=loc.service_cidr,
            kubernetes_version=member.kubernetes_version,
            cilium_version=member.cilium_version,
            nodes=nodes,
            bpffs=str(self.paths.bpffs(self.prefix)),
            cluster_id=0,
            mesh=None,
            apiserver_port=APISERVER_PORT,
            extra={"networkDataplane": loc.network_dataplane, "routingMode": loc.routing_mode},
        )
        cfg.write(cp.config)
        (cp.logs / "pods").mkdir(parents=True, exist_ok=True)
        kubeinit.init(
            cp.kube,
            member.name,
            node_netns=nodes[0].netns,
            node_ip=nodes[0].ip,
            node_name=nodes[0].name,
            node_ips=[n.ip for n in nodes],
            service_cidr=loc.service_cidr,
            kubernetes_version=member.kubernetes_version,
            logs_dir=cp.logs / "pods",
            fleet_prefix=self.prefix,
        )
        self.start_kube_apiserver(member)
        self._wait_kube_api(member, KUBE_API_TIMEOUT)
        client = self.kube(member)
        for obj in cilium_install.install_objects(member.name, member.cilium_version, loc.routing_mode, loc.pod_cidr):
            client.apply(obj, field_manager="fleetnet-install")
        self.start_controller_manager(member)
        self._write_fleet_kubeconfig(member, add=True)
        if loc.network_dataplane == "cilium":
            self.start_agent(member)

    def delete_cluster(self, member: Member) -> None:
        client = self._clients.pop(member.name, None)
        if client is not None:
            client.close()
        kc = self._kube.pop(member.name, None)
        if kc is not None:
            kc.close()
        cp = self.cluster_paths(member.name)
        for role in ("agent", "exporter", "etcd", "controller-manager", "kube-apiserver"):
            self._stop(role, member.name)
        mine = [n for n in topology.owned_netns(self.prefix) if cluster_owns(self.prefix, member.name, n)]
        for rec in procs.records_in_netns(mine):  # the pods' containers
            procs.terminate(rec)
        # pods before nodes
        for ns in sorted(mine, key=lambda n: n.split(topology.SEP)[1] != "p"):
            netlink.delete_netns(ns)
            topology.remove_hosts(ns)
        if cp.config.exists() and member.local is not None:
            cfg = ClusterConfig.read(cp.config)
            self._free_ips(member.local.underlay, [n.ip for n in cfg.nodes])
        shutil.rmtree(cp.root, ignore_errors=True)
        self._write_fleet_kubeconfig(member, add=False)

    # ---------------------------------------------------------------- the Kubernetes API
    def kube(self, member: Member) -> KubeClient:
        """The hub's client of a member's API server (kubernetes-admin), one per member."""
        c = self._kube.get(member.name)
        if c is None:
            c = KubeClient.from_kubeconfig(
                self.cluster_paths(member.name).kubeconfig("admin"), user_agent="fleetnet-hub"
            )
            self._kube[member.name] = c
        return c

    def _wait_kube_api(self, member: Member, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                self.kube(member).request("GET", "/readyz", timeout=2.0)
                return
            except ApiError as e:
                last = str(e)
            if not self.is_running("kube-apiserver", member.name):
                raise SystemFailure(
                    f"the Kubernetes API server of {member.name} exited during start-up; see "
                    f"{self.cluster_paths(member.name).logs / 'kube-apiserver.log'}."
                )
            time.sleep(0.05)
        raise SystemFailure(f"the Kubernetes API server of {member.name} did not answer within {timeout:.0f} s: {last}")

    def _write_fleet_kubeconfig(self, member: Member, add: bool) -> None:
        """``<home>/kubeconfig`` holds one context per local member (what `fleetnet kubectl` uses)."""
        path = self.paths.kubeconfig
        with self._kc_lock:
            doc = kubeconfig.load_file(path) if path.exists() else None
            if add:
                mine = kubeconfig.load_file(self.cluster_paths(member.name).kubeconfig("admin"))
                for section in ("clusters", "users", "contexts"):
                    for item in mine.get(section) or []:
                        item["name"] = member.name if section != "users" else f"{member.name}-admin"
                        if section == "contexts":
                            item["context"] = {"cluster": member.name, "user": f"{member.name}-admin"}
                mine["current-context"] = member.name
                doc = kubeconfig.merge(
                    doc, mine, overwrite=True, set_current=doc is None or not doc.get("current-context")
                )
            elif doc is not None:
                for section, name in (
                    ("clusters", member.name),
                    ("users", f"{member.name}-admin"),
                    ("contexts", member.name),
                ):
                    doc[section] = [x for x in doc.get(section) or [] if x.get("name") != name]
                if doc.get("current-context") == member.name:
                    doc["current-context"] = doc["contexts"][0]["name"] if doc.get("contexts") else ""
            if doc is not None:
                kubeconfig.write(path, doc)

    # ---------------------------------------------------------------- processes
    def _spawn(self, role: str, member: str, argv: list[str], netns: str | None) -> procs.ProcRecord:
        cp = self.cluster_paths(member)
        cp.logs.mkdir(parents=True, exist_ok=True)
        cp.run.mkdir(parents=True, exist_ok=True)
        rec = procs.spawn(
            argv, netns=netns, log_path=str(cp.logs / f"{role}.log"), pid_path=str(cp.run / f"{role}.pid")
        )
        self.recorder.add_process(f"{role}:{member}", rec.to_dict())
        return rec

    def _stop(self, role: str, member: str) -> None:
        key = f"{role}:{member}"
        rec = self.recorder.record.processes.get(key)
        if rec is not None:
            procs.terminate(procs.ProcRecord.from_dict(rec))
            self.recorder.remove_process(key)

    def is_running(self, role: str, member: str) -> bool:
        rec = self.recorder.record.processes.get(f"{role}:{member}")
        return rec is not None and procs.is_alive(procs.ProcRecord.from_dict(rec))

    def start_kube_apiserver(self, member: Member) -> None:
        cp = self.cluster_paths(member.name)
        self._spawn(
            "kube-apiserver",
            member.name,
            [sys.executable, "-m", "fleetnet.kube.apiserver", "--config", str(cp.kube / "apiserver.json")],
            None,
        )

    def start_controller_manager(self, member: Member) -> None:
        cfg = self.config(member)
        cp = self.cluster_paths(member.name)
        self._spawn(
            "controller-manager",
            member.name,
            [
                sys.executable,
                "-m",
                "fleetnet.local.controllers",
                "--kubeconfig",
                str(cp.kubeconfig("controller-manager")),
            ],
            cfg.control_node.netns,
        )

    def start_agent(self, member: Member) -> None:
        cfg = self.config(member)
        cp = self.cluster_paths(member.name)
        self._spawn(
            "agent",
            member.name,
            [sys.executable, "-m", "fleetnet.agent", "--cluster-dir", str(cp.root)],
            cfg.control_node.netns,
        )

    def restart_agent(self, member: Member) -> None:
        self._stop("agent", member.name)
        self.start_agent(member)

    def _etcd_spec(self, cfg: ClusterConfig) -> EtcdServerSpec:
        ap = self.cluster_paths(cfg.name).apiserver
        return EtcdServerSpec(
            name=cfg.name,
            data_dir=ap / "etcd-data",
            listen_ip=cfg.control_node.ip,
            client_port=cfg.apiserver_port,
            peer_port=cfg.apiserver_port + 1,
            cert_file=ap / "server.crt",
            key_file=ap / "server.key",
            trusted_ca_file=ap / "ca.crt",
        )

    def start_apiserver(self, member: Member) -> None:
        cfg = self.config(member)
        cp = self.cluster_paths(member.name)
        if not self.is_running("etcd", member.name):
            self._spawn("etcd", member.name, etcd_argv(self._etcd_spec(cfg)), cfg.control_node.netns)
        if not self.is_running("exporter", member.name):
            (cp.apiserver / "status.json").unlink(missing_ok=True)
            self._spawn(
                "exporter",
                member.name,
                [sys.executable, "-m", "fleetnet.apiserver", "--cluster-dir", str(cp.root)],
                cfg.control_node.netns,
            )

    def stop_apiserver(self, member: Member) -> None:
        self._stop("exporter", member.name)
        self._stop("etcd", member.name)

    # ---------------------------------------------------------------- mesh
    def peer_info(self, member: Member) -> PeerInfo:
        cfg = self.config(member)
        return PeerInfo(
            name=member.name, cluster_id=cfg.cluster_id, endpoint=f"https://{cfg.control_node.ip}:{cfg.apiserver_port}"
        )

    def join(self, member: Member, cluster_id: int, ca: CertKeyPair, options: ProfileOptions, profile: str) -> PeerInfo:
        cfg = self.config(member)
        cp = self.cluster_paths(member.name)
        ap = cp.apiserver
        ap.mkdir(parents=True, exist_ok=True)
        certs.write_ca(ap, "ca", ca)
        certs.write_pair(ap, "server", meshcerts.server_cert(ca, [n.ip for n in cfg.nodes]))
        certs.write_pair(ap, "admin", meshcerts.admin_cert(ca, member.name))
        certs.write_pair(ap, "root", meshcerts.root_cert(ca))
        cm = cp.clustermesh
        cm.mkdir(parents=True, exist_ok=True)
        certs.write_ca(cm, "common-etcd-client-ca", ca)
        certs.write_pair(cm, "common-etcd-client", meshcerts.remote_cert(ca, member.name))
        write_atomic(ap / "peers.json", json.dumps([]))
        new = replace(
            cfg,
            cluster_id=cluster_id,
            mesh=MeshConfig(
                profile=profile,
                require_global_namespace=options.require_global_namespace,
                policy_default_local_cluster=options.policy_default_local_cluster,
                service_cache_ttl_seconds=options.service_cache_ttl_seconds,
            ),
        )
        new.write(cp.config)
        self.start_apiserver(member)
        self._wait_apiserver_ready(member, timeout=30.0)
        return PeerInfo(
            name=member.name, cluster_id=cluster_id, endpoint=f"https://{cfg.control_node.ip}:{cfg.apiserver_port}"
        )

    def _wait_apiserver_ready(self, member: Member, timeout: float) -> None:
        status = self.cluster_paths(member.name).apiserver / "status.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if json.loads(status.read_text()).get("ready"):
                    return
            except (OSError, ValueError):
                pass
            if not self.is_running("exporter", member.name) or not self.is_running("etcd", member.name):
                raise SystemFailure(
                    f"the clustermesh-apiserver of {member.name} exited during start-up; see "
                    f"{self.cluster_paths(member.name).logs}."
                )
            time.sleep(0.05)
        raise SystemFailure(f"the clustermesh-apiserver of {member.name} was not ready within {timeout:.0f} s.")

    def set_options(self, member: Member, options: ProfileOptions) -> None:
        """Keep the member's mesh settings (cilium-config) equal to its network's options."""
        cp = self.cluster_paths(member.name)
        cfg = self.config(member)
        if cfg.mesh is None:
            return
        mesh = replace(
            cfg.mesh,
            require_global_namespace=options.require_global_namespace,
            policy_default_local_cluster=options.policy_default_local_cluster,
            service_cache_ttl_seconds=options.service_cache_ttl_seconds,
        )
        if mesh != cfg.mesh:
            replace(cfg, mesh=mesh).write(cp.config)

    def set_peers(self, member: Member, ca: CertKeyPair, peers: Sequence[PeerInfo]) -> None:
        cp = self.cluster_paths(member.name)
        cm = cp.clustermesh
        cm.mkdir(parents=True, exist_ok=True)
        # users first, so that a peer's agent can read this member's etcd as soon as it is told about it
        write_atomic(cp.apiserver / "peers.json", json.dumps(sorted(p.name for p in peers)))
        wanted = {p.name for p in peers}
        for p in peers:
            text = etcdconfig.render(
                etcdconfig.EtcdClientConfig(
                    endpoints=(p.endpoint,),
                    trusted_ca_file=str(cm / "common-etcd-client-ca.crt"),
                    cert_file=str(cm / "common-etcd-client.crt"),
                    key_file=str(cm / "common-etcd-client.key"),
                )
            )
            path = cm / p.name
            if not path.exists() or path.read_text() != text:
                write_atomic(path, text, mode=0o600)
        for f in cm.iterdir():
            if "." not in f.name and f.name not in wanted:
                f.unlink(missing_ok=True)

    def leave(self, member: Member) -> None:
        cp = self.cluster_paths(member.name)
        for f in cp.clustermesh.iterdir() if cp.clustermesh.exists() else []:
            f.unlink(missing_ok=True)
        cfg = self.config(member)
        new = replace(cfg, cluster_id=0, mesh=None)
        new.write(cp.config)
        self.stop_apiserver(member)
        shutil.rmtree(cp.apiserver, ignore_errors=True)

    # ---------------------------------------------------------------- agent API
    def _agent_client(self, member: str) -> httpx.Client:
        """One pooled client per agent: the hub asks every agent every few seconds."""
        c = self._clients.get(member)
        if c is None:
            sock = self.cluster_paths(member).agent_socket
            c = httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://agent")
            self._clients[member] = c
        return c

    def agent_get(self, member: Member, path: str, timeout: float = 2.0) -> Any:
        try:
            r = self._agent_client(member.name).get(path, timeout=timeout)
        except (httpx.HTTPError, OSError) as e:
            raise SystemFailure(f"the agent of {member.name} does not answer ({e}); is it running?") from e
        if r.status_code >= 400:
            raise SystemFailure(f"the agent of {member.name} answered {r.status_code}: {r.text}")
        return r.json()

    def agent_post(self, member: Member, path: str, body: Any, timeout: float = 10.0) -> Any:
        sock = self.cluster_paths(member.name).agent_socket
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=timeout) as c:
                r = c.post(f"http://agent{path}", json=body)
        except (httpx.HTTPError, OSError) as e:
            raise SystemFailure(f"the agent of {member.name} does not answer ({e}); is it running?") from e
        if r.status_code >= 400:
            from fleetnet.errors import InvalidInput

            msg = (
                r.json().get("error", r.text)
                if r.headers.get("content-type", "").startswith("application/json")
                else r.text
            )
            raise InvalidInput(str(msg))
        return r.json()

    def remote_status(self, member: Member) -> list[RemoteStatus] | None:
        try:
            data = self.agent_get(member, "/v1/cluster", timeout=1.0)
        except SystemFailure:
            return None
        return [
            RemoteStatus(
                name=c["name"],
                ready=bool(c.get("ready")),
                connected=bool(c.get("connected")),
                error=c.get("last-failure-reason"),
            )
            for c in data.get("clusters", [])
        ]

    def upgrade(self, member: Member, kubernetes_version: str, cilium_version: str) -> None:
        """Set the member's versions and restart its Cilium pieces on them (agent, clustermesh-apiserver);
        the datapath keeps its pinned maps, so traffic flows through the restart."""
        cp = self.cluster_paths(member.name)
        cfg = self.config(member)
        replace(cfg, kubernetes_version=kubernetes_version, cilium_version=cilium_version).write(cp.config)
        if self.is_running("agent", member.name):
            self.restart_agent(member)
        if self.is_running("exporter", member.name):
            self._stop("exporter", member.name)
            self.start_apiserver(member)

    def supervise(self, members: Sequence[Member]) -> None:
        """Restart a member's processes that died (what systemd does for a node's daemons)."""
        for m in members:
            if m.local is None:
                continue
            if not self.is_running("kube-apiserver", m.name):
                log.warning("Kubernetes API server of %s is not running; starting it", m.name)
                self.start_kube_apiserver(m)
            if not self.is_running("controller-manager", m.name):
                log.warning("controller manager of %s is not running; starting it", m.name)
                self.start_controller_manager(m)
            if m.local.network_dataplane != "cilium":
                continue
            if not self.is_running("agent", m.name):
                log.warning("agent of %s is not running; starting it", m.name)
                self.start_agent(m)
            in_mesh = m.mesh is not None and m.mesh.state != "Failed"
            deployed = (self.cluster_paths(m.name).apiserver / "server.crt").exists()
            running = self.is_running("etcd", m.name) and self.is_running("exporter", m.name)
            if in_mesh and deployed and not running:
                log.warning("clustermesh-apiserver of %s is not running; starting it", m.name)
                self.start_apiserver(m)
