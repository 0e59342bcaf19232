"""Pods of a local cluster: the Deployment controller, the scheduler and the kubelet in one.

Each pod is a network namespace with a veth to its node and an address from the node's pod CIDR
(``local/topology.py``); its container is a process started inside that namespace. Runtime facts
(namespace, interface, process record, node) live in the pod's ``status.fleetnet`` so a restarted
agent adopts running pods instead of recreating them, and ``fleetnet down`` can end them.
"""

from __future__ import annotations

import logging
import random
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

from fleetnet.kube.objstore import key_of
from fleetnet.local import netlink, procs, topology
from fleetnet.model.cluster import NodeConfig

if TYPE_CHECKING:
    from fleetnet.agent.agent import Agent

log = logging.getLogger(__name__)

ECHO_IMAGE = "fleetnet/echo"
CLIENT_IMAGE = "fleetnet/client"
DEFAULT_ECHO_PORT = 8080


def _listening_tcp_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN in the network namespace of ``pid`` (read from /proc, no exec)."""
    ports: set[int] = set()
    try:
        with open(f"/proc/{pid}/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[3] == "0A":
                    ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    except (OSError, StopIteration, IndexError, ValueError):
        pass
    return ports


def container_ports(pod: dict[str, Any]) -> tuple[list[int], list[int]]:
    tcp: list[int] = []
    udp: list[int] = []
    for c in pod["spec"].get("containers") or []:
        for p in c.get("ports") or []:
            (udp if p.get("protocol") == "UDP" else tcp).append(int(p["containerPort"]))
    return tcp, udp


def image_of(pod: dict[str, Any]) -> str:
    containers = pod["spec"].get("containers") or [{}]
    return str(containers[0].get("image", ""))


class Kubelet:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.rng = random.Random()
        self.restarts: Counter[tuple[str, str, str]] = Counter()

    # ---------------------------------------------------------------- helpers
    @property
    def prefix(self) -> str:
        return self.agent.cfg.fleet_prefix

    def node_spec(self, n: NodeConfig) -> topology.NodeSpec:
        # pods need only the node's namespace, name and pod CIDR; the underlay is not touched here
        ul = topology.UnderlaySpec(name="", netns="", bridge="", subnet="0.0.0.0/0")
        return topology.NodeSpec(
            cluster=self.agent.cfg.name, name=n.name, netns=n.netns, underlay=ul, ip=n.ip, pod_cidr=n.pod_cidr
        )

    def status(self) -> dict[str, Any]:
        pods = self.agent.objects.list("Pod")
        running = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
        return {"summary": f"{running}/{len(pods)} pods running", "pods": len(pods), "running": running}

    # ---------------------------------------------------------------- reconcile
    def reconcile(self) -> None:
        try:
            self._deployments()
        finally:
            self._pods()

    def check(self) -> None:
        """The periodic health check: restart dead containers, notice pods that became ready."""
        self._pods()

    def _deployments(self) -> None:
        from fleetnet.kube.typed import stored
        from fleetnet.plan.endpoints import deployment_pods

        objs = self.agent.objects
        pods = objs.list("Pod")
        nodes = [n.name for n in self.agent.cfg.nodes]
        deployments = objs.list("Deployment")
        live = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in deployments}
        for d in deployments:
            ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
            owned = [p for p in pods if _owner(p) == ("Deployment", name) and p["metadata"].get("namespace") == ns]
            deploy = stored(d)
            create, delete = deployment_pods(
                deploy,
                nodes,
                [stored(p) for p in owned],
                rng=self.rng,
            )
            if create:
                docs = []
                for p in create:
                    doc = p.to_dict()
                    doc["metadata"]["ownerReferences"] = [
                        {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "controller": True}
                    ]
                    docs.append(doc)
                objs.apply(docs)
            if delete:
                objs.delete([("Pod", p.meta.namespace or ns, p.meta.name) for p in delete])
            ready = sum(
                1
                for p in objs.list("Pod", ns)
                if _owner(p) == ("Deployment", name) and (p.get("status") or {}).get("phase") == "Running"
            )
            status = {"replicas": d["spec"].get("replicas", 1), "readyReplicas": ready}
            if d.get("status") != status:
                objs.update_status(key_of(d), status)
        # garbage collection: pods whose Deployment is gone
        orphans = [
            key_of(p)
            for p in pods
            if _owner(p)[0] == "Deployment" and (p["metadata"].get("namespace"), _owner(p)[1]) not in live
        ]
        if orphans:
            objs.delete(orphans)

    def _pods(self) -> None:
        objs = self.agent.objects
        cfg = self.agent.cfg
        nodes = {n.name: n for n in cfg.nodes}
        pods = objs.list("Pod")
        wanted = {
            topology.pod_netns(self.prefix, cfg.name, p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods
        }
        # pods that disappeared from the store: end their process, remove their namespace
        pod_prefix = f"{self.prefix}{topology.SEP}p{topology.SEP}{cfg.name}{topology.SEP}"
        for ns in netlink.list_netns(pod_prefix):
            if ns not in wanted:
                self._remove_netns(ns)
        load = Counter(((p.get("status") or {}).get("fleetnet") or {}).get("node") for p in pods)
        used: dict[str, set[str]] = {n: set() for n in nodes}
        for p in pods:
            f = (p.get("status") or {}).get("fleetnet") or {}
            if f.get("node") in used and (p.get("status") or {}).get("podIP"):
                used[f["node"]].add(p["status"]["podIP"])
        for p in pods:
            try:
                self._ensure_pod(p, nodes, load, used)
            except Exception as e:
                log.exception("pod %s/%s", p["metadata"].get("namespace"), p["metadata"]["name"])
                st = dict(p.get("status") or {})
                st.update(phase="Failed", message=str(e))
                objs.update_status(key_of(p), st)

    def _remove_netns(self, ns: str) -> None:
        for rec in procs.records_in_netns([ns]):
            procs.terminate(rec, timeout=2.0)
        netlink.delete_netns(ns)
        topology.remove_hosts(ns)

    def _ensure_pod(
        self, p: dict[str, Any], nodes: dict[str, NodeConfig], load: Counter[Any], used: dict[str, set[str]]
    ) -> None:
        objs = self.agent.objects
        ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
        st = dict(p.get("status") or {})
        f = dict(st.get("fleetnet") or {})
        rec = procs.ProcRecord.from_dict(f["process"]) if f.get("process") else None
        netns = topology.pod_netns(self.prefix, self.agent.cfg.name, ns, name)
        if rec is not None and procs.is_alive(rec) and netlink.netns_exists(netns):
            if st.get("phase") != "Running" and self._ready(p, rec):
                st.update(phase="Running", conditions=[{"type": "Ready", "status": "True"}])
                objs.update_status(key_of(p), st)
            return
        node_name = p["spec"].get("nodeName") or f.get("node")
        if node_name not in nodes:
            node_name = min(nodes, key=lambda n: (load[n], n))
            load[node_name] += 1
        node = self.node_spec(nodes[node_name])
        ip = st.get("podIP") if f.get("node") == node_name and st.get("podIP") else None
        if ip is None:
            ip = topology.allocate_pod_ip(node.pod_cidr, used[node_name])
            used[node_name].add(ip)
        spec = topology.pod_spec(self.prefix, node, ns, name, ip)
        if rec is not None:  # the container died: restart it in the same sandbox
            self.restarts[("Pod", ns, name)] += 1
        if not netlink.netns_exists(spec.netns):
            topology.add_pod(spec)
        self.on_pod_network(spec)
        rec = self._start_container(p, spec, node_name)
        st.update(
            phase="Pending",
            podIP=ip,
            podIPs=[{"ip": ip}],
            hostIP=nodes[node_name].ip,
            conditions=[{"type": "Ready", "status": "False"}],
            fleetnet={
                "node": node_name,
                "netns": spec.netns,
                "ifname": spec.host_ifname,
                "nodeNetns": node.netns,
                "process": rec.to_dict(),
                "restarts": self.restarts[("Pod", ns, name)],
            },
        )
        if self._ready(p, rec):
            st.update(phase="Running", conditions=[{"type": "Ready", "status": "True"}])
        objs.update_status(key_of(p), st)

    def on_pod_network(self, spec: topology.PodSpec) -> None:
        """Hook for the datapath: a pod's veth exists (services and policy attach here)."""
        for feat in self.agent.features:
            hook = getattr(feat, "pod_network_ready", None)
            if hook is not None:
                hook(spec)

    def _ready(self, p: dict[str, Any], rec: procs.ProcRecord) -> bool:
        if not procs.is_alive(rec):
            return False
        if image_of(p) != ECHO_IMAGE:
            return True
        tcp, _ = container_ports(p)
        return set(tcp or [DEFAULT_ECHO_PORT]) <= _listening_tcp_ports(rec.pid)

    def _start_container(self, p: dict[str, Any], spec: topology.PodSpec, node: str) -> procs.ProcRecord:
        ns, name = p["metadata"]["namespace"], p["metadata"]["name"]
        image = image_of(p)
        if image == ECHO_IMAGE:
            tcp, udp = container_ports(p)
            argv = [
                sys.executable,
                "-m",
                "fleetnet.workloads.echo",
                "--cluster",
                self.agent.cfg.name,
                "--node",
                node,
                "--namespace",
                ns,
                "--pod",
                name,
            ]
            for port in tcp or ([] if udp else [DEFAULT_ECHO_PORT]):
                argv += ["--tcp", str(port)]
            for port in udp:
                argv += ["--udp", str(port)]
        else:
            argv = ["sleep", "infinity"]
        logs = self.agent.paths.logs / "pods"
        logs.mkdir(parents=True, exist_ok=True)
        return procs.spawn(
            argv,
            netns=spec.netns,
            log_path=str(logs / f"{ns}_{name}.log"),
            pid_path=str(self.agent.paths.run / f"pod_{ns}_{name}.pid"),
        )


def _owner(p: dict[str, Any]) -> tuple[str, str]:
    for ref in p["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind")), str(ref.get("name"))
    return ("", "")
