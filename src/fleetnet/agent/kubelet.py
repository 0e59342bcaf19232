"""The kubelet of a local cluster's nodes: runs the pods bound to them and reports on them.

For every pod whose ``spec.nodeName`` is one of this cluster's nodes: a sandbox (a network
namespace with a veth to its node and an address from the node's pod CIDR, ``local/topology.py``),
the datapath attached before any container starts (Cilium's CNI ADD), then one host process per
container inside the namespace (``local/images.py`` says what each image runs). Status goes to the
API through ``/status`` in the kubelet's own shapes (``local/podstatus.py``); containers that exit
are restarted per ``restartPolicy`` with the kubelet's back-off; a pod marked for deletion gets
SIGTERM, SIGKILL after its grace period, and is then deleted with grace 0. The kubelet also
registers the cluster's Nodes and renews their Leases. Runtime facts live in ``Sandboxes``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Protocol

from fleetnet.agent.sandboxes import Container, Sandbox, Sandboxes
from fleetnet.local import images, netlink, procs, topology
from fleetnet.local.podstatus import ContainerState, container_id, pod_status
from fleetnet.model.cluster import ClusterConfig, NodeConfig

log = logging.getLogger(__name__)

BACKOFF_START, BACKOFF_MAX = 10.0, 300.0
LEASE_RENEW = 10.0


def now_rfc3339(t: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def listening_tcp_ports(pid: int) -> set[int]:
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


class Objects(Protocol):
    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]: ...
    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None: ...
    def apply(self, objs: Any) -> Any: ...
    def update_status(self, key: tuple[str, str, str], status: dict[str, Any]) -> bool: ...
    def delete(self, keys: Any, grace_period: int | None = None) -> Any: ...


SandboxHook = Callable[[topology.PodSpec], None]


class Kubelet:
    def __init__(
        self,
        objects: Objects,
        config: Callable[[], ClusterConfig],
        sandboxes: Sandboxes,
        logs_dir: str,
        run_dir: str,
        on_sandbox: Sequence[SandboxHook] = (),
    ) -> None:
        self.objects = objects
        self.config = config
        self.sandboxes = sandboxes
        self.logs_dir = logs_dir
        self.run_dir = run_dir
        self.on_sandbox = list(on_sandbox)
        self._terminating: set[str] = set()
        self._killer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kubelet-kill")
        self._lease_at = 0.0
        self._registered: dict[str, tuple[str, str]] = {}

    @property
    def cfg(self) -> ClusterConfig:
        return self.config()

    def status(self) -> dict[str, Any]:
        mine = self._my_pods()
        running = sum(1 for p in mine if (p.get("status") or {}).get("phase") == "Running")
        return {"summary": f"{running}/{len(mine)} pods running", "pods": len(mine), "running": running}

    def _my_pods(self) -> list[dict[str, Any]]:
        nodes = {n.name for n in self.cfg.nodes}
        return [p for p in self.objects.list("Pod") if (p.get("spec") or {}).get("nodeName") in nodes]

    # ------------------------------------------------------------------ reconcile
    def reconcile(self) -> None:
        self.register_nodes()
        self._sync_pods()

    def check(self) -> None:
        """The periodic pass: containers that died, pods that became ready, leases."""
        if time.monotonic() - self._lease_at > LEASE_RENEW:
            self.register_nodes(force=True)
        self._sync_pods()

    def _sync_pods(self) -> None:
        cfg = self.cfg
        nodes = {n.name: n for n in cfg.nodes}
        pods = self._my_pods()
        live_uids = {p["metadata"]["uid"] for p in pods}
        # sandboxes whose pod is gone from the API (force-deleted, or deleted while we were down)
        for sb in self.sandboxes.all():
            if sb.uid not in live_uids and sb.uid not in self._terminating:
                self._remove_sandbox(sb)
        pod_prefix = f"{cfg.fleet_prefix}{topology.SEP}p{topology.SEP}{cfg.name}{topology.SEP}"
        known = {sb.netns for sb in self.sandboxes.all()}
        for ns in netlink.list_netns(pod_prefix):
            if ns not in known:
                _remove_netns(ns)
        for p in pods:
            uid = p["metadata"]["uid"]
            try:
                if p["metadata"].get("deletionTimestamp"):
                    self._terminate(p)
                else:
                    self._ensure(p, nodes[p["spec"]["nodeName"]])
            except Exception as e:
                log.exception("pod %s/%s", p["metadata"].get("namespace"), p["metadata"]["name"])
                if self.sandboxes.get(uid) is None:
                    self._report(p, None, {}, error=str(e))

    # ------------------------------------------------------------------ one pod
    def _ensure(self, pod: dict[str, Any], node: NodeConfig) -> None:
        md, spec = pod["metadata"], pod.get("spec") or {}
        ns, name, uid = md.get("namespace") or "default", md["name"], md["uid"]
        found = self.sandboxes.get(uid)
        if found is not None and not netlink.netns_exists(found.netns):
            self.sandboxes.remove(uid)
            found = None
        if found is None:
            old = self.sandboxes.by_name(ns, name)
            if old is not None:  # same name, new pod: the old sandbox goes first
                self._remove_sandbox(old)
            found = self._new_sandbox(ns, name, uid, node)
        sb = found
        ready: dict[str, bool] = {}
        for c in spec.get("containers") or []:
            sb, ready[c["name"]] = self._ensure_container(pod, sb, c)
        self.sandboxes.put(sb)
        self._report(pod, sb, ready)

    def _new_sandbox(self, ns: str, name: str, uid: str, node: NodeConfig) -> Sandbox:
        cfg = self.cfg
        ul = topology.UnderlaySpec(name="", netns="", bridge="", subnet="0.0.0.0/0")
        nspec = topology.NodeSpec(
            cluster=cfg.name, name=node.name, netns=node.netns, underlay=ul, ip=node.ip, pod_cidr=node.pod_cidr
        )
        ip = topology.allocate_pod_ip(node.pod_cidr, self.sandboxes.ips_on(node.name))
        pspec = topology.pod_spec(cfg.fleet_prefix, nspec, ns, name, ip)
        if not netlink.netns_exists(pspec.netns):
            topology.add_pod(pspec)
        for hook in self.on_sandbox:  # CNI ADD: the datapath and names before any container runs
            hook(pspec)
        sb = Sandbox(ns, name, uid, node.name, pspec.netns, node.netns, pspec.host_ifname, ip, now_rfc3339())
        self.sandboxes.put(sb)
        return sb

    def _ensure_container(self, pod: dict[str, Any], sb: Sandbox, c: dict[str, Any]) -> tuple[Sandbox, bool]:
        cname = c["name"]
        state = sb.containers.get(cname, Container())
        rec = procs.ProcRecord.from_dict(state.process) if state.process else None
        policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
        if rec is not None and procs.is_alive(rec):
            return sb, self._ready(c, rec)
        if rec is not None and state.finished_at is None:  # it just ended
            code = procs.exit_code(rec)
            code = 0 if code is None else (128 - code if code < 0 else code)
            last = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "startedAt": state.started_at,
                    "finishedAt": now_rfc3339(),
                    "containerID": container_id(rec.pid, rec.start_time),
                }
            }
            restart = policy == "Always" or (policy == "OnFailure" and code != 0)
            delay = min(BACKOFF_MAX, BACKOFF_START * (2 ** min(state.restarts, 5))) if restart else 0
            state = replace(
                state, finished_at=now_rfc3339(), exit_code=code, last=last, backoff_until=time.time() + delay
            )
            if not restart:
                return sb.with_container(cname, state), False
        if state.finished_at is not None:
            if policy == "Never" or (policy == "OnFailure" and state.exit_code == 0):
                return sb.with_container(cname, state), False
            if time.time() < state.backoff_until:
                return sb.with_container(cname, state), False
        try:
            prog = images.program(c, cluster=self.cfg.name, node=sb.node, namespace=sb.namespace, pod=sb.name)
        except images.NotPullable as e:
            return sb.with_container(cname, replace(state, error=str(e))), False
        env = images.env_of(c, _base_env(sb.name))
        logs = os.path.join(self.logs_dir, f"{sb.namespace}_{sb.name}.log")
        rec = procs.spawn(
            prog.argv,
            netns=sb.netns,
            log_path=logs,
            pid_path=os.path.join(self.run_dir, f"pod_{sb.namespace}_{sb.name}_{cname}.pid"),
            env=env,
        )
        restarts = state.restarts + (1 if state.process else 0)
        state = Container(process=rec.to_dict(), restarts=restarts, started_at=now_rfc3339(), last=state.last)
        return sb.with_container(cname, state), self._ready(c, rec)

    def _ready(self, c: dict[str, Any], rec: procs.ProcRecord) -> bool:
        if not procs.is_alive(rec):
            return False
        prog_ports: set[int] = set()
        try:
            prog = images.program(c, cluster="", node="", namespace="", pod="")
            if prog.echo:
                prog_ports = set(prog.ports)
        except images.NotPullable:
            return False
        probe = c.get("readinessProbe") or {}
        for kind in ("tcpSocket", "httpGet"):
            port = (probe.get(kind) or {}).get("port")
            if isinstance(port, int):
                prog_ports.add(port)
        return prog_ports <= listening_tcp_ports(rec.pid)

    def _report(
        self, pod: dict[str, Any], sb: Sandbox | None, ready: dict[str, bool], error: str | None = None
    ) -> None:
        md, spec = pod["metadata"], pod.get("spec") or {}
        node = next((n for n in self.cfg.nodes if n.name == spec.get("nodeName")), self.cfg.nodes[0])
        states = []
        for c in spec.get("containers") or []:
            st = sb.containers.get(c["name"]) if sb is not None else None
            states.append(_container_state(c, st, ready.get(c["name"], False), error))
        status = pod_status(
            old=pod.get("status"),
            containers=states,
            host_ip=node.ip,
            pod_ip=sb.ip if sb is not None else None,
            started=sb.started if sb is not None else now_rfc3339(),
            now=now_rfc3339(),
            restart_policy=spec.get("restartPolicy", "Always"),
            generation=md.get("generation"),
        )
        if _same_status(pod.get("status") or {}, status):
            return
        self.objects.update_status(("Pod", md.get("namespace") or "default", md["name"]), status)

    # ------------------------------------------------------------------ deletion
    def _terminate(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        if uid in self._terminating:
            return
        self._terminating.add(uid)
        grace = int(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        self._killer.submit(self._kill_and_delete, pod, float(grace))

    def _kill_and_delete(self, pod: dict[str, Any], grace: float) -> None:
        md = pod["metadata"]
        try:
            sb = self.sandboxes.get(md["uid"])
            if sb is not None:
                for c in sb.containers.values():
                    if c.process:
                        procs.terminate(procs.ProcRecord.from_dict(c.process), timeout=max(0.1, grace))
                self._remove_sandbox(sb)
            self.objects.delete([("Pod", md.get("namespace") or "default", md["name"])], grace_period=0)
        except Exception:
            log.exception("deleting pod %s/%s", md.get("namespace"), md["name"])
        finally:
            self._terminating.discard(md["uid"])

    def _remove_sandbox(self, sb: Sandbox) -> None:
        for c in sb.containers.values():
            if c.process:
                procs.terminate(procs.ProcRecord.from_dict(c.process), timeout=2.0)
        _remove_netns(sb.netns)
        self.sandboxes.remove(sb.uid)

    # ------------------------------------------------------------------ nodes
    def register_nodes(self, force: bool = False) -> None:
        cfg = self.cfg
        for i, n in enumerate(cfg.nodes):
            want = (cfg.kubernetes_version, n.pod_cidr)
            if not force and self._registered.get(n.name) == want:
                continue
            self.objects.apply([node_object(cfg, n, control_plane=i == 0)])
            status = node_status(cfg, n, self.objects.get("Node", "", n.name))
            self.objects.update_status(("Node", "", n.name), status)
            self.objects.apply([lease_object(n.name)])
            self._registered[n.name] = want
        self._lease_at = time.monotonic()


def _base_env(pod: str) -> dict[str, str]:
    path = os.path.dirname(sys.executable) + os.pathsep + "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return {"PATH": path, "HOSTNAME": pod, "HOME": "/root", "LANG": "C.UTF-8"}


def _remove_netns(ns: str) -> None:
    for rec in procs.records_in_netns([ns]):
        procs.terminate(rec, timeout=2.0)
    netlink.delete_netns(ns)
    topology.remove_hosts(ns)


def _container_state(c: dict[str, Any], st: Container | None, ready: bool, error: str | None) -> ContainerState:
    image = str(c.get("image", ""))
    if st is None or (st.process is None and st.error is None):
        reason = "ErrImagePull" if error else "ContainerCreating"
        return ContainerState(c["name"], image, "waiting", reason=reason, message=error)
    if st.error is not None:
        return ContainerState(
            c["name"], image, "waiting", reason="ErrImagePull", message=st.error, restarts=st.restarts
        )
    rec = procs.ProcRecord.from_dict(st.process) if st.process else None
    cid = container_id(rec.pid, rec.start_time) if rec else None
    if st.finished_at is None and rec is not None:
        return ContainerState(
            c["name"], image, "running", ready, st.restarts, st.started_at, container_id=cid, last_terminated=st.last
        )
    if st.backoff_until > time.time():
        return ContainerState(
            c["name"],
            image,
            "waiting",
            restarts=st.restarts,
            reason="CrashLoopBackOff",
            message=f"back-off {int(st.backoff_until - time.time()) + 1}s restarting failed container={c['name']}",
            last_terminated=st.last,
        )
    return ContainerState(
        c["name"],
        image,
        "terminated",
        restarts=st.restarts,
        started_at=st.started_at,
        finished_at=st.finished_at,
        exit_code=st.exit_code,
        reason="Completed" if (st.exit_code or 0) == 0 else "Error",
        container_id=cid,
    )


def _same_status(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def strip(s: dict[str, Any]) -> dict[str, Any]:
        s = dict(s)
        s["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in s.get("conditions") or []]
        return s

    return strip(old) == strip(new)


# --- Node and Lease objects ----------------------------------------------------------------------


def node_object(cfg: ClusterConfig, n: NodeConfig, control_plane: bool) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": n.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
    }
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": n.name, "labels": labels},
        "spec": {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr]},
    }


def node_status(cfg: ClusterConfig, n: NodeConfig, live: dict[str, Any] | None) -> dict[str, Any]:
    now = now_rfc3339()
    old = {c.get("type"): c for c in ((live or {}).get("status") or {}).get("conditions") or []}

    def cond(kind: str, ok: str, reason: str, message: str) -> dict[str, Any]:
        since = old.get(kind, {}).get("lastTransitionTime") if old.get(kind, {}).get("status") == ok else now
        return {
            "type": kind,
            "status": ok,
            "lastHeartbeatTime": now,
            "lastTransitionTime": since or now,
            "reason": reason,
            "message": message,
        }

    capacity = {
        "cpu": str(os.cpu_count() or 1),
        "memory": f"{_mem_kib()}Ki",
        "pods": "110",
        "ephemeral-storage": "10Gi",
    }
    return {
        "addresses": [{"type": "InternalIP", "address": n.ip}, {"type": "Hostname", "address": n.name}],
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "architecture": "amd64",
            "bootID": "",
            "containerRuntimeVersion": "fleetnet://0.1.0",
            "kernelVersion": os.uname().release,
            "kubeProxyVersion": "",
            "kubeletVersion": f"v{cfg.kubernetes_version.lstrip('v')}",
            "machineID": "",
            "operatingSystem": "linux",
            "osImage": "fleetnet local node",
            "systemUUID": "",
        },
    }


def _mem_kib() -> int:
    try:
        with open("/proc/meminfo") as f:
            return int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def lease_object(node: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": node, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now},
    }
