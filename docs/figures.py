"""Draws the architecture figures of docs/architecture.md into docs/img/ (boxes and arrows, matplotlib).

    .venv/bin/python docs/figures.py [--out docs/img]

Two pictures: ``processes.png`` (the processes of a local fleet, the files each one reads and
writes, and the remote watches over the underlay) and ``layers.png`` (the package layers of
``src/fleetnet`` and which way the imports go). Every box and arrow is listed as data below; the
drawing code only places them, so changing the picture means changing the lists.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

# One colour per kind of thing, used in both figures.
EDGE = "#dbe9f6"  # CLI, API
LOOP = "#fde2c8"  # long-running processes / loop packages
STATE = "#e4f1dc"  # files, databases, etcd
ADAPTER = "#efe6f5"  # adapters
PURE = "#f5f5f5"  # pure packages
NETNS = "#fafafa"  # network namespaces (drawn as frames)
INK = "#222222"
ACCENT = "#b03a2e"  # remote watches, layering exceptions


@dataclass(frozen=True, slots=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    title: str
    body: str = ""
    color: str = PURE
    frame: bool = False  # a namespace or group drawn around other boxes: title at the top, dashed
    mono: bool = False  # body in a fixed-width font (columns of file names)

    def point(self, side: str, at: float = 0.5) -> tuple[float, float]:
        """A point on the box's edge: side is n/s/e/w, ``at`` the fraction along that edge."""
        if side == "n":
            return (self.x + self.w * at, self.y + self.h)
        if side == "s":
            return (self.x + self.w * at, self.y)
        if side == "e":
            return (self.x + self.w, self.y + self.h * at)
        return (self.x, self.y + self.h * at)


@dataclass(frozen=True, slots=True)
class Arrow:
    start: tuple[float, float]
    end: tuple[float, float]
    label: str = ""
    color: str = INK
    dashed: bool = False
    both: bool = False
    rad: float = 0.0  # curvature
    label_at: float = 0.5  # where along the arrow the label sits
    label_dx: float = 0.0
    label_dy: float = 0.0


def draw_box(ax: Axes, b: Box) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (b.x, b.y),
            b.w,
            b.h,
            boxstyle="round,pad=0.02,rounding_size=0.6",
            linewidth=1.2,
            linestyle="--" if b.frame else "-",
            edgecolor="#777777" if b.frame else INK,
            facecolor=b.color,
            zorder=1 if b.frame else 2,
        )
    )
    if b.frame:
        ax.text(b.x + 0.8, b.y + b.h - 0.6, b.title, ha="left", va="top", fontsize=9.5, color="#444444", zorder=3)
        return
    if b.body:
        ax.text(b.x + b.w / 2, b.y + b.h - 0.7, b.title, ha="center", va="top", fontsize=10.5, weight="bold", zorder=3)
        ax.text(
            b.x + 0.9,
            b.y + b.h - 2.6,
            b.body,
            ha="left",
            va="top",
            fontsize=9.6 if b.mono else 9,
            family="monospace" if b.mono else "sans-serif",
            linespacing=1.35,
            zorder=3,
        )
    else:
        ax.text(b.x + b.w / 2, b.y + b.h / 2, b.title, ha="center", va="center", fontsize=10.5, weight="bold", zorder=3)


def draw_arrow(ax: Axes, a: Arrow) -> None:
    ax.add_patch(
        FancyArrowPatch(
            a.start,
            a.end,
            arrowstyle="<|-|>" if a.both else "-|>",
            mutation_scale=13,
            linewidth=1.4,
            linestyle="--" if a.dashed else "-",
            color=a.color,
            connectionstyle=f"arc3,rad={a.rad}",
            shrinkA=2,
            shrinkB=2,
            zorder=4,
        )
    )
    if a.label:
        x = a.start[0] + (a.end[0] - a.start[0]) * a.label_at + a.label_dx
        y = a.start[1] + (a.end[1] - a.start[1]) * a.label_at + a.label_dy
        ax.text(
            x,
            y,
            a.label,
            ha="center",
            va="center",
            fontsize=8.3,
            color=a.color,
            zorder=5,
            linespacing=1.3,
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "none", "alpha": 0.92},
        )


def render(
    path: Path, boxes: Sequence[Box], arrows: Sequence[Arrow], size: tuple[float, float], title: str, legend: str
) -> None:
    width, height = size
    fig = Figure(figsize=(width / 6.5, height / 6.5), dpi=110)  # no pyplot: no GUI backend, no global state
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    ax.text(1, height - 1.0, title, ha="left", va="top", fontsize=13, weight="bold")
    ax.text(1, height - 3.8, legend, ha="left", va="top", fontsize=9, color="#555555", linespacing=1.4)
    for b in sorted(boxes, key=lambda b: not b.frame):
        draw_box(ax, b)
    for a in arrows:
        draw_arrow(ax, a)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, facecolor="white")


# ---------------------------------------------------------------------------------------------------
# Figure 1: processes and data flows of a local fleet


def processes() -> tuple[list[Box], list[Arrow]]:
    cli = Box(2, 64, 20, 5, "fleetnet CLI", color=EDGE)
    curl = Box(25, 64, 15, 5, "curl, browser", color=EDGE)
    hub = Box(
        2,
        48,
        52,
        11.5,
        "fleetnet daemon (hub): fleetnet serve",
        "REST API (FastAPI) on <home>/fleetnet.sock, and 127.0.0.1:PORT with --port\n"
        "Fleet (members, profiles) · MeshController (what-if, apply, ids, CA, fan-out)\n"
        "UpdateController (update runs, gates, mesh health check)\n"
        "loop every 0.5 s: network states from the agents; restart dead member processes\n"
        "LocalDriver: the namespaces, processes and files of each member\n"
        "<home>/fleet.db: SQLite store of members, profiles, operations, CAs, runs\n"
        "<home>/state.json: what exists on the host; `fleetnet down` reads only this",
        color=LOOP,
    )
    files = Box(
        58,
        51,
        40,
        18,
        "<home>/clusters/<member>/",
        "cluster.json   cilium-config: name, id, nodes,\n"
        "               CIDRs, versions, mesh options\n"
        "clustermesh/   one etcd client YAML per remote\n"
        "               + common-etcd-client{.crt,.key,-ca.crt}\n"
        "apiserver/     ca, server, admin, root certs,\n"
        "               peers.json, status.json, etcd-data/\n"
        "kube.db        object store (SQLite)\n"
        "agent.sock     the agent's API\n"
        "logs/ run/     logs (agent, etcd, exporter,\n"
        "               pods/), pid files",
        color=STATE,
        mono=True,
    )
    c1 = Box(
        2, 19, 46, 16, "node namespace <prefix>_n_c1_c1-node1 (host network of member c1)", color=NETNS, frame=True
    )
    c2 = Box(
        52, 19, 46, 16, "node namespace <prefix>_n_c2_c2-node1 (host network of member c2)", color=NETNS, frame=True
    )
    agent1 = Box(
        4,
        21,
        20,
        10.5,
        "agent c1",
        "python -m fleetnet.agent\npods, services, identities,\npolicy, routes, eBPF maps",
        color=LOOP,
    )
    api1 = Box(
        26,
        21,
        20,
        10.5,
        "clustermesh-apiserver c1",
        "etcd :2379, mTLS, auth on\n+ exporter: writes c1's keys\n(python -m fleetnet.apiserver)",
        color=LOOP,
    )
    api2 = Box(54, 21, 20, 10.5, "clustermesh-apiserver c2", "etcd :2379 + exporter", color=LOOP)
    agent2 = Box(76, 21, 20, 10.5, "agent c2", "as in c1", color=LOOP)
    pods1 = Box(
        2,
        6.5,
        42,
        7,
        "pod namespaces of c1",
        "veth lxc… to the node, eBPF on it (tcx or tc); pins in /run/fleetnet/<prefix>/c1/",
        color=PURE,
    )
    pods2 = Box(56, 6.5, 42, 7, "pod namespaces of c2", "the same; pins in /run/fleetnet/<prefix>/c2/", color=PURE)
    underlay = Box(2, 0.5, 96, 4, "underlay namespace <prefix>_u_default: bridge br0, 100.64.0.0/16 (the flat network)")
    boxes = [cli, curl, hub, files, c1, c2, agent1, api1, agent2, api2, pods1, pods2, underlay]
    arrows = [
        Arrow(cli.point("s", 0.5), hub.point("n", 0.2), "HTTP, unix socket", label_dx=9, label_dy=0.5),
        Arrow(curl.point("s", 0.5), hub.point("n", 0.6)),
        Arrow(hub.point("e", 0.6), files.point("w", 0.4), "writes", label_dy=1.2),
        Arrow(files.point("s", 0.1), c1.point("n", 0.9), both=True),
        Arrow(
            files.point("s", 0.75),
            c2.point("n", 0.75),
            "read by the member's own agent and\nexporter only; the agent writes pod status,\n"
            "EndpointSlices and identities to kube.db",
            both=True,
            label_at=0.5,
            label_dx=-1,
        ),
        Arrow(
            hub.point("s", 0.12),
            agent1.point("n", 0.3),
            "GET /v1/status, /v1/cluster\non agent.sock",
            dashed=True,
            label_dx=6,
        ),
        Arrow(
            agent1.point("s", 0.3),
            pods1.point("n", 0.15),
            "netns, veth, routes, maps",
            label_at=0.6,
            label_dx=9,
            label_dy=-1.5,
        ),
        Arrow(agent2.point("s", 0.5), pods2.point("n", 0.75)),
        Arrow((46, 19), (46, 4.5), "eth0\non br0", label_at=0.45, label_dx=0),
        Arrow((54, 19), (54, 4.5)),
        Arrow(
            agent1.point("s", 0.9),
            api2.point("s", 0.1),
            "agent c1 lists + watches c2's cilium/state/... over the underlay (mTLS, user remote-c1, read-only)",
            color=ACCENT,
            rad=0.08,
            label_at=0.5,
            label_dy=-3.3,
        ),
        Arrow(
            agent2.point("n", 0.4),
            api1.point("n", 0.6),
            "agent c2 lists + watches c1's keys as remote-c2",
            color=ACCENT,
            rad=0.3,
            label_at=0.5,
            label_dy=4.6,
        ),
    ]
    return boxes, arrows


# ---------------------------------------------------------------------------------------------------
# Figure 2: package layers


def layers() -> tuple[list[Box], list[Arrow]]:
    edges = Box(2, 62, 64, 14, "edges", color=NETNS, frame=True)
    loops = Box(2, 42, 96, 16, "long-running loops", color=NETNS, frame=True)
    adapters = Box(2, 12, 60, 26, "adapters: one per kind of effect", color=NETNS, frame=True)
    pure = Box(65, 12, 33, 26, "pure: values and decisions, no I/O", color=NETNS, frame=True)
    api = Box(
        4,
        64,
        29,
        8.5,
        "api/",
        "FastAPI app: members, clusterMeshProfiles,\noperations, kube, cilium, updates, gates",
        EDGE,
    )
    cli = Box(
        36,
        64,
        28,
        8.5,
        "cli/",
        "typer CLI: a client of the REST API;\nup, down and kubectl exec act on the host",
        EDGE,
    )
    note = Box(
        69,
        62,
        29,
        14,
        "imports across the layers",
        "agent/, apiserver/ → hub.paths (ClusterPaths)\n"
        "apiserver/ → agent.services.stored\n"
        "cli/ → hub.paths, hub.teardown, hub.serve,\n"
        "      hub.kube.kind_of, local.procs\n"
        "hub.serve → api.app (to serve it)",
        "#fbeaea",
    )
    hub = Box(
        4, 44, 30, 9.5, "hub/", "the daemon: Fleet, MeshController,\nUpdateController, LocalDriver, teardown", LOOP
    )
    agent = Box(
        36, 44, 30, 9.5, "agent/", "one per cluster: pods, services,\nidentities, policy, routes, ClusterMesh", LOOP
    )
    apiserver = Box(
        68, 44, 28, 9.5, "apiserver/", "one per cluster: the exporter\n(projections into its own etcd)", LOOP
    )
    names = [
        ("store/", "hub store (SQLite)"),
        ("kube/", "member object store\n(SQLite)"),
        ("kvstore/", "etcd client (grpc, mTLS),\nusers and roles, argv"),
        ("pki/", "CA and certificates"),
        ("local/", "netlink, netns,\nprocesses, topology"),
        ("datapath/", "eBPF C, build, loader,\nmaps through bpf(2)"),
        ("workloads/", "echo server, probe"),
    ]
    adapter_boxes = []
    for i, (title, body) in enumerate(names):
        row, col = divmod(i, 4)
        adapter_boxes.append(Box(4 + col * 14.4, 25 - row * 11, 13.2, 8.5, title, body, ADAPTER))
    plan = Box(
        67,
        25,
        29,
        8.5,
        "plan/",
        "what-if, ids, prerequisites, CIDRs, service\nmerge, identities, policy, update runs, catalog",
        PURE,
    )
    model = Box(67, 14, 29, 8.5, "model/", "frozen value types and codecs;\nthe kvstore key layout", PURE)
    errors = Box(
        2,
        1.5,
        96,
        7,
        "errors.py: FleetnetError → InvalidInput, NotFound, Conflict, DaemonNotRunning, SystemFailure "
        "(every package raises these)",
        color=PURE,
    )
    boxes = [edges, loops, adapters, pure, api, cli, note, hub, agent, apiserver, *adapter_boxes, plan, model, errors]
    arrows = [
        Arrow(api.point("s", 0.5), hub.point("n", 0.6), "imports", label_at=0.45),
        Arrow(cli.point("w", 0.5), api.point("e", 0.5), "HTTP", dashed=True, label_dy=1.2),
        Arrow((30, 42), (30, 38), "imports", label_dx=5),
        Arrow((80, 42), (80, 38), "imports", label_dx=5),
        Arrow(plan.point("s", 0.5), model.point("n", 0.5)),
        Arrow((30, 12), (30, 8.5)),
        Arrow((80, 12), (80, 8.5)),
        Arrow(adapter_boxes[2].point("e", 0.5), adapter_boxes[3].point("w", 0.5)),
    ]
    return boxes, arrows


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Draw docs/img/*.png.")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "img")
    args = ap.parse_args(argv)
    boxes, arrows = processes()
    render(
        args.out / "processes.png",
        boxes,
        arrows,
        (100, 76),
        "fleetnet on one host: processes, files and data flows (local members c1, c2 in one network)",
        "orange: processes · green: files · dashed frame: network namespace · "
        "red: remote watches between members · dashed arrow: request and answer",
    )
    boxes, arrows = layers()
    render(
        args.out / "layers.png",
        boxes,
        arrows,
        (100, 82),
        "Package layers of src/fleetnet (imports point down)",
        "arrows: imports (from a layer to the one below); the red box lists the imports that do not follow them",
    )
    for name in ("processes.png", "layers.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
