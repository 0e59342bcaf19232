"""Draws the architecture figures of docs/architecture.md into docs/img/ (boxes and arrows, matplotlib).

    .venv/bin/python docs/figures.py [--out docs/img]

Two pictures: ``processes.png`` (the processes of a local fleet, the files and etcd keys each one reads
and writes, and the remote watches over the underlay) and ``layers.png`` (the package layers of
``src/fleetnet`` and which way the imports go). Every box and arrow is listed as data below; the
drawing code only places them, so changing the picture means changing the lists.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

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
        ax.text(
            b.x + b.w / 2, b.y + b.h - 0.7, b.title, ha="center", va="top", fontsize=10.5, weight="bold", zorder=3
        )
        ax.text(
            b.x + 0.9,
            b.y + b.h - 2.6,
            b.body,
            ha="left",
            va="top",
            fontsize=8.4 if b.mono else 9,
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
    fig = plt.figure(figsize=(width / 6.5, height / 6.5), dpi=110)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    ax.text(1, height - 1.0, title, ha="left", va="top", fontsize=13, weight="bold")
    ax.text(1, height - 4.2, legend, ha="left", va="top", fontsize=9, color="#555555", linespacing=1.4)
    for b in sorted(boxes, key=lambda b: not b.frame):
        draw_box(ax, b)
    for a in arrows:
        draw_arrow(ax, a)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, facecolor="white")
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------
# Figure 1: processes and data flows of a local fleet


def processes() -> tuple[list[Box], list[Arrow]]:
    cli = Box(2, 64, 20, 5, "fleetnet CLI", color=EDGE)
    curl = Box(25, 64, 15, 5, "curl, browser", color=EDGE)
    hub = Box(
        2,
        40,
        52,
        19,
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
        40,
        40,
        29,
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
    c1 = Box(2, 19, 46, 16, "node namespace <prefix>_n_c1_c1-node1 (host network of member c1)", color=NETNS, frame=True)
    c2 = Box(52, 19, 46, 16, "node namespace <prefix>_n_c2_c2-node1 (host network of member c2)", color=NETNS, frame=True)
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
        46,
        7,
        "pod namespaces of c1",
        "veth lxc… to the node, eBPF on it (tcx or tc); pins in <home>/bpffs/c1/",
        color=PURE,
    )
    pods2 = Box(52, 6.5, 46, 7, "pod namespaces of c2", "the same; pins in <home>/bpffs/c2/", color=PURE)
    underlay = Box(2, 0.5, 96, 4, "underlay namespace <prefix>_u_default: bridge br0, 100.64.0.0/16 (the flat network)")
    boxes = [cli, curl, hub, files, c1, c2, agent1, api1, agent2, api2, pods1, pods2, underlay]
    arrows = [
        Arrow(cli.point("s", 0.5), hub.point("n", 0.2), "HTTP, unix socket", label_dx=9, label_dy=0.5),
        Arrow(curl.point("s", 0.5), hub.point("n", 0.6)),
        Arrow(hub.point("e", 0.75), files.point("w", 0.75), "writes", label_dy=1.2),
        Arrow(
            files.point("s", 0.2),
            c1.point("n", 0.82),
            "each member's processes read\nonly their own folder; the agent\nwrites pod status, EndpointSlices,\n"
            "identities back to kube.db",
            both=True,
            label_at=0.45,
            label_dx=-9,
        ),
        Arrow(files.point("s", 0.6), c2.point("n", 0.5), both=True),
        Arrow(
            hub.point("s", 0.12),
            agent1.point("n", 0.3),
            "GET /v1/status, /v1/cluster\non agent.sock",
            dashed=True,
            label_dx=6,
        ),
        Arrow(agent1.point("s", 0.3), pods1.point("n", 0.15), "netns, veth, routes, maps", label_dx=8.5),
        Arrow(agent2.point("s", 0.5), pods2.point("n", 0.75)),
        Arrow(c1.point("s", 0.98), (c1.x + c1.w * 0.98, 4.5), "eth0 on br0", label_dx=-4.5),
        Arrow(c2.point("s", 0.02), (c2.x + c2.w * 0.02, 4.5)),
        Arrow(
            agent1.point("e", 0.12),
            api2.point("w", 0.12),
            "agent c1 lists + watches c2's cilium/state/...: over the underlay, mTLS, user remote-c1 (read-only)",
            color=ACCENT,
            label_at=0.5,
            label_dy=-2.2,
        ),
        Arrow(
            agent2.point("n", 0.4),
            api1.point("n", 0.6),
            "agent c2 lists + watches c1's keys as remote-c2",
            color=ACCENT,
            rad=0.3,
            label_at=0.5,
            label_dy=5.3,
        ),
    ]
    return boxes, arrows


# ---------------------------------------------------------------------------------------------------
# Figure 2: package layers


def layers() -> tuple[list[Box], list[Arrow]]:
    edges = Box(2, 61, 96, 14, "edges", color=NETNS, frame=True)
    loops = Box(2, 42, 96, 16, "long-running loops", color=NETNS, frame=True)
    adapters = Box(2, 21, 96, 18, "adapters: one per kind of effect", color=NETNS, frame=True)
    pure = Box(2, 2, 96, 16, "pure: values and decisions, no I/O", color=NETNS, frame=True)
    api = Box(8, 63, 36, 8, "api/", "FastAPI app: members, clusterMeshProfiles, operations,\nkube, cilium, versions, update runs, gates", EDGE)
    cli = Box(56, 63, 36, 8, "cli/", "typer CLI: a client of the REST API (unix socket);\nkubectl exec, up and down act on the host", EDGE)
    hub = Box(4, 44, 34, 10, "hub/", "daemon: Fleet, MeshController, UpdateController,\nLocalDriver, teardown, paths", LOOP)
    agent = Box(41, 44, 26, 10, "agent/", "per cluster: kubelet, services,\nidentities, policy, routes, ClusterMesh", LOOP)
    apiserver = Box(70, 44, 26, 10, "apiserver/", "per cluster: exporter\n(projections into its own etcd)", LOOP)
    names = [
        ("store/", "hub store\n(SQLite)"),
        ("kube/", "member object\nstore (SQLite)"),
        ("kvstore/", "etcd client,\nusers, argv"),
        ("pki/", "CA and\ncertificates"),
        ("local/", "netlink, netns,\nprocesses, topology"),
        ("datapath/", "eBPF C, loader,\nmaps (bpf(2))"),
        ("workloads/", "echo server,\nprobe"),
    ]
    w = 12.4
    adapter_boxes = [
        Box(3.5 + i * (w + 1.3), 23, w, 11, title, body, ADAPTER) for i, (title, body) in enumerate(names)
    ]
    model = Box(6, 4, 30, 10, "model/", "frozen value types and codecs: Member,\nClusterMeshProfile, ClusterConfig, kvstore keys", PURE)
    plan = Box(40, 4, 40, 10, "plan/", "selectors, what-if, ids, prerequisites, CIDRs, global-service\nmerge, identities, policy (parse, compile, trace), update runs,\nversion catalog", PURE)
    errors = Box(83, 4, 13, 10, "errors.py", "one exception\ntree, used by\nevery layer", PURE)
    boxes = [edges, loops, adapters, pure, api, cli, hub, agent, apiserver, *adapter_boxes, model, plan, errors]
    arrows = [
        Arrow(api.point("s", 0.4), hub.point("n", 0.6), "imports"),
        Arrow(cli.point("s", 0.3), api.point("e", 0.3), "HTTP", dashed=True, rad=-0.3, label_dy=1.5),
        Arrow(hub.point("s", 0.5), (35, 39.5), "imports"),
        Arrow(agent.point("s", 0.5), (54, 39.5), "imports"),
        Arrow(apiserver.point("s", 0.5), (83, 39.5), "imports"),
        Arrow((50, 21), plan.point("n", 0.25), "imports"),
        Arrow(plan.point("w", 0.5), model.point("e", 0.5)),
        Arrow(
            apiserver.point("w", 0.8),
            agent.point("e", 0.8),
            "agent.services.stored",
            color=ACCENT,
            dashed=True,
            label_dy=2.2,
        ),
        Arrow(
            agent.point("n", 0.3),
            hub.point("n", 0.85),
            "hub.paths (ClusterPaths)\nalso from apiserver/",
            color=ACCENT,
            dashed=True,
            rad=0.35,
            label_dy=4.0,
        ),
        Arrow(
            cli.point("s", 0.1),
            hub.point("e", 0.8),
            "hub.paths, hub.teardown (down),\nhub.serve (serve), hub.kube.kind_of",
            color=ACCENT,
            dashed=True,
            rad=-0.15,
            label_at=0.55,
            label_dy=1.0,
        ),
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
        (100, 80),
        "fleetnet on one host: processes, files and data flows (local members c1, c2 in one network)",
        "orange: processes · green: files · dashed frame: network namespace · "
        "red: remote watches between members · dashed arrow: request and answer",
    )
    boxes, arrows = layers()
    render(
        args.out / "layers.png",
        boxes,
        arrows,
        (100, 80),
        "Package layers of src/fleetnet (imports point down)",
        "red dashed: imports that cross the layering sideways or upwards",
    )
    for name in ("processes.png", "layers.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
