"""`fleetnet cilium MEMBER ...`: Cilium-style troubleshooting, answered by the member's agent."""

from __future__ import annotations

import datetime
from typing import Any

import typer

from fleetnet.cli.common import ctx
from fleetnet.cli.output import dig, emit
from fleetnet.errors import Conflict, InvalidInput

app = typer.Typer(help="Cilium-style status and debugging of one member.", no_args_is_help=True)
clustermesh = typer.Typer(help="ClusterMesh status (connect/disconnect are the fleet's job).", no_args_is_help=True)
service = typer.Typer(help="Services and their backends.", no_args_is_help=True)
bpf = typer.Typer(help="Raw eBPF map contents.", no_args_is_help=True)
bpf_lb = typer.Typer(help="Load-balancer maps.", no_args_is_help=True)
identity = typer.Typer(help="Security identities.", no_args_is_help=True)
policy = typer.Typer(help="Network policy.", no_args_is_help=True)
app.add_typer(clustermesh, name="clustermesh")
app.add_typer(service, name="service")
app.add_typer(bpf, name="bpf")
bpf.add_typer(bpf_lb, name="lb")
app.add_typer(identity, name="identity")
app.add_typer(policy, name="policy")


@app.callback()
def member(c: typer.Context, member: str = typer.Argument(..., help="The member to inspect.")) -> None:
    c.obj = {"member": member}


def _m(c: typer.Context) -> str:
    p: typer.Context | None = c
    while p is not None:
        if isinstance(p.obj, dict) and "member" in p.obj:
            return str(p.obj["member"])
        p = p.parent  # type: ignore[assignment]
    return ""


def _get(c: typer.Context, path: str, **params: Any) -> Any:
    return ctx(c).client.get(f"/members/{_m(c)}/cilium/{path}", params=params)


def _when(ts: float | None) -> str:
    return "never" if not ts else datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_remote(r: dict[str, Any]) -> None:
    state = "ready" if r["ready"] else "not ready"
    print(
        f"   {r['name']}: {state}, {r['num-nodes']} nodes, {r['num-endpoints']} endpoints, "
        f"{r['num-identities']} identities, {r['num-shared-services']} services, "
        f"{r['num-failures']} reconnections (last: {_when(r.get('last-failure'))})"
    )
    print(f"   └  {r['status']}")
    cfg = r.get("config") or {}
    print(
        f"   └  remote configuration: expected=true, retrieved={str(cfg.get('retrieved')).lower()}, "
        f"cluster-id={cfg.get('cluster-id')}, kvstoremesh=false, sync-canaries={str(cfg.get('sync-canaries')).lower()}"
    )
    syn = r.get("synced") or {}
    print("   └  synchronization status: " + ", ".join(f"{k}={str(v).lower()}" for k, v in syn.items()))
    if r.get("last-failure-reason") and not r["ready"]:
        print(f"   └  last error: {r['last-failure-reason']}")


@app.command("status")
def status(c: typer.Context) -> None:
    """Agent status: cluster, versions, ClusterMesh, datapath counters."""
    s = _get(c, "status")
    if ctx(c).output != "table":
        emit(s, ctx(c).output)
        return
    print(f"Cluster:          {s['cluster']['name']} (id {s['cluster']['id']})")
    print(f"Cilium:           {s['version']['cilium']} (Kubernetes {s['version']['kubernetes']})")
    print(
        f"Nodes:            {len(s['nodes'])}: "
        + ", ".join(f"{n['name']} {n['ip']} {n['podCIDR']}" for n in s["nodes"])
    )
    print(f"ClusterMesh:      {s['clustermesh']['summary']}")
    for name, f in (s.get("features") or {}).items():
        if isinstance(f, dict) and f.get("summary"):
            print(f"{name + ':':<18}{f['summary']}")
    drops = dig(s, "features", "Datapath", "counters")
    if drops:
        print("Datapath counters:")
        for k, v in sorted(drops.items()):
            print(f"   {k}: {v}")
    if s.get("lastError"):
        print(f"Last error:       {s['lastError']}")


@clustermesh.command("status")
def clustermesh_status(c: typer.Context) -> None:
    """Per remote cluster: connected, ready, nodes, synchronization, last error."""
    data = _get(c, "cluster")
    if ctx(c).output != "table":
        emit(data, ctx(c).output)
        return
    remotes = data.get("clusters", [])
    ready = sum(1 for r in remotes if r["ready"])
    print(f"ClusterMesh:   {ready}/{len(remotes)} remote clusters ready")
    for r in remotes:
        print_remote(r)


def _refuse(what: str) -> None:
    raise Conflict(
        f"`cilium {what}` is refused: the fleet manages this member's ClusterMesh; relabel members and run "
        "`fleetnet clustermeshprofile apply` instead."
    )


@clustermesh.command("connect", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def connect(c: typer.Context) -> None:
    _refuse("clustermesh connect")


@clustermesh.command("disconnect", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def disconnect(c: typer.Context) -> None:
    _refuse("clustermesh disconnect")


@app.command("upgrade", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def upgrade(c: typer.Context) -> None:
    raise Conflict(
        "`cilium upgrade` is refused: the fleet keeps Cilium in step with each member's Kubernetes version; "
        "upgrade members with `fleetnet updaterun`."
    )


@service.command("list")
def service_list(c: typer.Context) -> None:
    """Frontends and their backends, with the cluster of each backend."""
    data = _get(c, "service")
    if ctx(c).output != "table":
        emit(data, ctx(c).output)
        return
    rows = []
    for s in data:
        for i, b in enumerate(s.get("backends") or [{}]):
            rows.append(
                {
                    "ID": s.get("id") if i == 0 else "",
                    "FRONTEND": f"{s['frontend']}" if i == 0 else "",
                    "SERVICE": f"{s.get('namespace')}/{s.get('name')}" if i == 0 else "",
                    "BACKEND": f"{i + 1}) {b.get('address', '')}" if b else "",
                    "CLUSTER": b.get("cluster", ""),
                    "STATE": (b.get("state", "") + (" (preferred)" if b.get("preferred") else "")) if b else "",
                }
            )
    emit(rows, "table")


@bpf_lb.command("list")
def bpf_lb_list(c: typer.Context) -> None:
    """The raw contents of the load-balancer maps."""
    data = _get(c, "bpf/lb")
    if ctx(c).output != "table":
        emit(data, ctx(c).output)
        return
    emit(
        [{"SERVICE ADDRESS": e["frontend"], "BACKEND ADDRESS (REVNAT_ID) (SLOT)": e["backend"]} for e in data], "table"
    )


@identity.command("list")
def identity_list(c: typer.Context) -> None:
    """Security identities known to this member (local and remote)."""
    data = _get(c, "identity")
    if ctx(c).output != "table":
        emit(data, ctx(c).output)
        return
    emit([{"ID": i["id"], "CLUSTER": i.get("cluster", ""), "LABELS": i["labels"]} for i in data], "table")


@policy.command("get")
def policy_get(c: typer.Context) -> None:
    """The policies in force and what each endpoint enforces."""
    emit(_get(c, "policy"), ctx(c).output if ctx(c).output != "table" else "yaml")


@policy.command("trace")
def policy_trace(
    c: typer.Context,
    src: str | None = typer.Option(None, "--src", help="CLUSTER/NAMESPACE/POD"),
    src_labels: str | None = typer.Option(None, "--src-labels", help="k=v,... (with io.cilium.k8s.policy.cluster)"),
    dst: str = typer.Option(..., "--dst", help="CLUSTER/NAMESPACE/POD (a pod of this member)"),
    dport: str = typer.Option(..., "--dport", help="PORT[/PROTOCOL]"),
    filename: str | None = typer.Option(None, "-f", "--filename", help="A candidate policy to evaluate, not applied."),
) -> None:
    """Would traffic from SRC to DST:DPORT be allowed, and which rule decides?"""
    if not src and not src_labels:
        raise InvalidInput("give the source with --src CLUSTER/NAMESPACE/POD or --src-labels k=v,...")
    port, _, proto = dport.partition("/")
    if not port.isdigit():
        raise InvalidInput(f"--dport {dport!r} must be PORT or PORT/PROTOCOL, for example 8080/TCP.")
    body: dict[str, Any] = {"src": src, "dst": dst, "dport": int(port), "protocol": (proto or "TCP").upper()}
    if src_labels:
        from fleetnet.plan.selector import parse_labels

        body["srcLabels"] = parse_labels(src_labels)
    if filename:
        from pathlib import Path

        body["candidate"] = Path(filename).read_text()
    out = ctx(c).client.post(f"/members/{_m(c)}/cilium/policy/trace", json=body)
    if ctx(c).output != "table":
        emit(out, ctx(c).output)
        return
    print(f"Final verdict: {'ALLOWED' if out['allowed'] else 'DENIED'}")
    print(f"Decided by:    {out['decidedBy']}")
