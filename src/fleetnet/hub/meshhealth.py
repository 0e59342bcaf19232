"""The mesh health check of an update run's stage (fleetnet's addition to Azure's update runs).

A network is healthy when every member is Connected, every member's agent sees every other member
ready, and a request from a pod of each member to an echo pod of each other member is answered
(members without pods are vouched for by their agents' remotes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from fleetnet.errors import FleetnetError
from fleetnet.hub.driver import ClusterDriver
from fleetnet.hub.fleet import Fleet
from fleetnet.local import images, netlink
from fleetnet.model.member import Member
from fleetnet.workloads import probe

PROBE_TIMEOUT = 1.0
ECHO_IMAGE = "fleetnet/echo"  # the kubelet's built-in echo server: answers HTTP on its TCP ports
ECHO_PORT = 8080


@dataclass(frozen=True, slots=True)
class _Pod:
    name: str  # namespace/name
    netns: str
    ip: str | None
    port: int | None  # a TCP port it answers HTTP on (echo pods only)


def mesh_problem(
    fleet: Fleet,
    driver: ClusterDriver,
    pods_of: Callable[[Member], list[dict[str, Any]]],
    networks: Sequence[str],
    prefix: str,
) -> tuple[str | None, int]:
    """The first thing wrong with these networks (None: healthy), and how many probes were answered."""
    everyone = fleet.list_members()
    probes = 0
    for net in networks:
        members = [m for m in everyone if m.mesh is not None and m.mesh.profile == net]
        for m in members:
            assert m.mesh is not None
            if m.mesh.state != "Connected":
                return f"member {m.name} of network {net} is {m.mesh.state}", probes
        for m in members:
            status = driver.remote_status(m)
            if status is None:
                return f"the agent of {m.name} (network {net}) does not answer", probes
            ready = {s.name for s in status if s.ready}
            missing = sorted({p.name for p in members} - ready - {m.name})
            if missing:
                return f"the agent of {m.name} does not see {', '.join(missing)} ready (network {net})", probes
        pods = {m.name: member_pods(pods_of(m) if m.local is not None else [], m, prefix) for m in members}
        for a in members:
            for b in members:
                src = next(iter(pods[a.name]), None)
                dst = next((p for p in pods[b.name] if p.port is not None and p.ip), None)
                if a.name == b.name or src is None or dst is None:
                    continue  # no pod to probe with: the agents' remotes above vouch for the pair
                url = f"http://{dst.ip}:{dst.port}/"
                try:
                    answer = netlink.call_in_netns(src.netns, partial(probe.request, url, PROBE_TIMEOUT))
                    error = answer.error if not answer.ok else None
                except FleetnetError as e:
                    error = str(e)
                if error is not None:
                    return (
                        f"a request from pod {src.name} in {a.name} to pod {dst.name} in {b.name} "
                        f"({dst.ip}:{dst.port}) failed: {error}",
                        probes,
                    )
                probes += 1
    return None, probes


def member_pods(pods: list[dict[str, Any]], member: Member, prefix: str) -> list[_Pod]:
    """The member's running pods, echo servers (which answer HTTP) first."""
    from fleetnet.local import topology

    if member.local is None:
        return []
    out = []
    for p in pods:
        st = p.get("status") or {}
        md = p.get("metadata") or {}
        if st.get("phase") != "Running" or not st.get("podIP") or md.get("deletionTimestamp"):
            continue
        netns = topology.pod_netns(prefix, member.name, md.get("namespace") or "default", md["name"])
        containers = p.get("spec", {}).get("containers") or [{}]
        port = None
        if images.repository(str(containers[0].get("image", ""))) == ECHO_IMAGE:
            tcp = [
                int(x["containerPort"])
                for c in containers
                for x in c.get("ports") or []
                if x.get("protocol", "TCP") == "TCP"
            ]
            port = tcp[0] if tcp else ECHO_PORT
        meta = p.get("metadata", {})
        out.append(_Pod(f"{meta.get('namespace')}/{meta.get('name')}", netns, st.get("podIP"), port))
    return sorted(out, key=lambda x: (x.port is None, x.name))
