"""`fleetnet member ...`"""

from __future__ import annotations

from typing import Any

import typer

from fleetnet.cli.common import ctx, labels_arg
from fleetnet.cli.output import dig, emit
from fleetnet.errors import InvalidInput

app = typer.Typer(help="Fleet members (clusters).", no_args_is_help=True)

MEMBER_COLUMNS = [
    ("NAME", lambda m: m["name"]),
    ("KUBERNETES", lambda m: m["kubernetesVersion"]),
    ("CILIUM", lambda m: m["ciliumVersion"]),
    ("GROUP", lambda m: m.get("group")),
    ("LABELS", lambda m: ",".join(f"{k}={v}" for k, v in sorted((m.get("labels") or {}).items()))),
    ("NETWORK", lambda m: dig(m, "meshProperties", "clusterMeshProfileResourceId", default="").rsplit("/", 1)[-1]),
    ("CILIUM ID", lambda m: dig(m, "meshProperties", "ciliumProperties", "id")),
    ("MESH STATE", lambda m: dig(m, "meshProperties", "status", "state")),
    ("POD CIDR", lambda m: dig(m, "local", "podCidr")),
    ("NODES", lambda m: dig(m, "local", "nodes")),
]


def show_members(c: typer.Context, members: list[dict[str, Any]]) -> None:
    emit(members, ctx(c).output, MEMBER_COLUMNS)


@app.command("create")
def create(
    c: typer.Context,
    name: str,
    local: bool = typer.Option(False, "--local", help="Create a local (emulated) cluster on this host."),
    kubeconfig: str | None = typer.Option(None, "--kubeconfig", help="Join a real cluster through its kubeconfig."),
    context: str | None = typer.Option(None, "--context"),
    pod_cidr: str | None = typer.Option(None, "--pod-cidr"),
    service_cidr: str | None = typer.Option(None, "--service-cidr"),
    nodes: int = typer.Option(1, "--nodes"),
    kubernetes_version: str | None = typer.Option(None, "--kubernetes-version"),
    labels: str | None = typer.Option(None, "--labels", help="k=v,k2=v2"),
    underlay: str = typer.Option("default", "--underlay", help="The flat network the nodes attach to."),
    network_dataplane: str = typer.Option("cilium", "--network-dataplane", help="cilium|none"),
    routing_mode: str = typer.Option("native", "--routing-mode", help="native|tunnel"),
    group: str | None = typer.Option(None, "--group", help="Update group."),
    self_managed_clustermesh: bool = typer.Option(
        False,
        "--self-managed-clustermesh",
        help="Pretend the cluster already runs its own ClusterMesh (fails the prerequisite).",
    ),
) -> None:
    """Create a member: a local cluster (--local) or a real cluster (--kubeconfig)."""
    if kubeconfig is not None:
        raise InvalidInput(
            "members with --kubeconfig are not supported by this version yet: create local clusters with --local."
        )
    if not local:
        raise InvalidInput("say what kind of member to create: --local for a local cluster, or --kubeconfig FILE.")
    body = {
        "name": name,
        "podCidr": pod_cidr,
        "serviceCidr": service_cidr,
        "nodes": nodes,
        "kubernetesVersion": kubernetes_version,
        "labels": labels_arg(labels) or {},
        "underlay": underlay,
        "networkDataplane": network_dataplane,
        "routingMode": routing_mode,
        "group": group,
        "selfManagedClustermesh": self_managed_clustermesh,
    }
    show_members(c, [ctx(c).client.post("/members", json=body)])


@app.command("list")
def list_(c: typer.Context, cluster_mesh_profile: str | None = typer.Option(None, "--cluster-mesh-profile")) -> None:
    """List members."""
    params = {"clusterMeshProfile": cluster_mesh_profile} if cluster_mesh_profile else {}
    show_members(c, ctx(c).client.get("/members", params=params))


@app.command("show")
def show(c: typer.Context, name: str) -> None:
    """Show one member."""
    m = ctx(c).client.get(f"/members/{name}")
    if ctx(c).output == "table":
        emit(m, "yaml")
    else:
        emit(m, ctx(c).output)


@app.command("update")
def update(
    c: typer.Context,
    name: str,
    labels: str | None = typer.Option(None, "--labels", help="k=v,k2=v2 (replaces the labels)"),
    group: str | None = typer.Option(None, "--group", help="Update group ('' clears it)."),
) -> None:
    """Change a member's labels or update group (membership changes only on the next apply)."""
    body: dict[str, Any] = {}
    if labels is not None:
        body["labels"] = labels_arg(labels)
    if group is not None:
        body["group"] = group
    if not body:
        raise InvalidInput("nothing to update: give --labels and/or --group.")
    show_members(c, [ctx(c).client.patch(f"/members/{name}", json=body)])


@app.command("delete")
def delete(c: typer.Context, name: str) -> None:
    """Delete a member (refused while it is in a cross-cluster network)."""
    ctx(c).client.delete(f"/members/{name}")
    if ctx(c).output == "table":
        print(f"member {name} deleted")
    else:
        emit({"deleted": name}, ctx(c).output)


@app.command("get-credentials")
def get_credentials(
    c: typer.Context,
    name: str,
    file: str | None = typer.Option(
        None, "--file", "-f", help="Kubeconfig to merge into (default: the first of $KUBECONFIG, else ~/.kube/config)."
    ),
    overwrite_existing: bool = typer.Option(
        False, "--overwrite-existing", help="Replace a cluster, user or context of the same name."
    ),
) -> None:
    """Merge a context NAME for the member's Kubernetes API into your kubeconfig (then: kubectl --context NAME)."""
    import base64
    import os
    from pathlib import Path

    from fleetnet.kube import kubeconfig

    out = ctx(c).client.post(f"/members/{name}/listClusterAdminCredential", json={})
    new = kubeconfig.load_text(base64.b64decode(out["kubeconfigs"][0]["value"]).decode(), f"credentials of {name}")
    for section in ("clusters", "users", "contexts"):
        for item in new.get(section) or []:
            item["name"] = name if section != "users" else f"clusterAdmin_{name}"
            if section == "contexts":
                item["context"] = {"cluster": name, "user": f"clusterAdmin_{name}"}
    new["current-context"] = name
    if file == "-":
        print(kubeconfig.dump(new), end="")
        return
    target = (
        Path(file)
        if file
        else Path(
            (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0] or Path.home() / ".kube" / "config"
        ).expanduser()
    )
    existing = kubeconfig.load_file(target) if target.exists() and target.stat().st_size else None
    kubeconfig.write(target, kubeconfig.merge(existing, new, overwrite_existing))
    if ctx(c).output == "table":
        print(f'Merged "{name}" as current context in {target}')
    else:
        emit({"context": name, "file": str(target)}, ctx(c).output)
