"""`fleetnet kubectl MEMBER ...`: Kubernetes objects of a local cluster."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer

from fleetnet.cli.common import ctx
from fleetnet.cli.output import dig, emit
from fleetnet.errors import InvalidInput, NotFound

app = typer.Typer(
    help="kubectl for a member's local cluster: kubectl MEMBER apply|get|delete|annotate|exec.", no_args_is_help=True
)


@app.callback()
def member(c: typer.Context, member: str = typer.Argument(..., help="The member (cluster) to talk to.")) -> None:
    c.obj = {"member": member}


def _m(c: typer.Context) -> str:
    return str(c.parent.obj["member"]) if c.parent and isinstance(c.parent.obj, dict) else ""


def _read(filename: str) -> tuple[str, str]:
    if filename == "-":
        return sys.stdin.read(), "-"
    p = Path(filename)
    if not p.is_file():
        raise InvalidInput(f"the file {filename} does not exist.")
    return p.read_text(), filename


@app.command("apply")
def apply(c: typer.Context, filename: str = typer.Option(..., "-f", "--filename")) -> None:
    """Create or update objects from a YAML file (or - for standard input)."""
    text, source = _read(filename)
    out = ctx(c).client.post(f"/members/{_m(c)}/kube/apply", json={"manifest": text, "source": source})
    if ctx(c).output == "table":
        for r in out:
            print(f"{r['kind'].lower()}/{r['name']} {r['result']}")
    else:
        emit(out, ctx(c).output)


def _age(obj: dict[str, Any]) -> str:
    return str(dig(obj, "status", "phase", default=""))


COLUMNS: dict[str, list[tuple[str, Any]]] = {
    "Pod": [
        ("NAMESPACE", lambda o: o["metadata"].get("namespace")),
        ("NAME", lambda o: o["metadata"]["name"]),
        ("READY", lambda o: "1/1" if dig(o, "status", "phase") == "Running" else "0/1"),
        ("STATUS", lambda o: dig(o, "status", "phase", default="Pending")),
        ("RESTARTS", lambda o: dig(o, "status", "fleetnet", "restarts", default=0)),
    ],
    "Deployment": [
        ("NAMESPACE", lambda o: o["metadata"].get("namespace")),
        ("NAME", lambda o: o["metadata"]["name"]),
        ("READY", lambda o: f"{dig(o, 'status', 'readyReplicas', default=0)}/{dig(o, 'spec', 'replicas', default=1)}"),
    ],
    "Service": [
        ("NAMESPACE", lambda o: o["metadata"].get("namespace")),
        ("NAME", lambda o: o["metadata"]["name"]),
        ("TYPE", lambda o: dig(o, "spec", "type", default="ClusterIP")),
        ("CLUSTER-IP", lambda o: dig(o, "spec", "clusterIP", default="<pending>")),
        (
            "PORT(S)",
            lambda o: ",".join(
                f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in dig(o, "spec", "ports", default=[])
            ),
        ),
        ("GLOBAL", lambda o: (o["metadata"].get("annotations") or {}).get("service.cilium.io/global", "")),
        ("SHARED", lambda o: (o["metadata"].get("annotations") or {}).get("service.cilium.io/shared", "")),
    ],
    "EndpointSlice": [
        ("NAMESPACE", lambda o: o["metadata"].get("namespace")),
        ("NAME", lambda o: o["metadata"]["name"]),
        ("ADDRESSTYPE", lambda o: o.get("addressType", "IPv4")),
        ("PORTS", lambda o: ",".join(str(p.get("port")) for p in o.get("ports") or [])),
        ("ENDPOINTS", lambda o: ",".join(a for e in o.get("endpoints") or [] for a in e.get("addresses", []))),
    ],
    "Namespace": [("NAME", lambda o: o["metadata"]["name"]), ("STATUS", lambda o: "Active")],
}
WIDE_POD = [
    ("IP", lambda o: dig(o, "status", "podIP")),
    ("NODE", lambda o: dig(o, "spec", "nodeName") or dig(o, "status", "fleetnet", "node")),
]


@app.command("get")
def get(
    c: typer.Context,
    kind: str,
    name: str | None = typer.Argument(None),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces"),
) -> None:
    """List or show objects: pods, deployments, services, endpointslices, namespaces, cnp, ccnp (KIND may be
    a comma-separated list, e.g. svc,endpointslices)."""
    from fleetnet.hub.kube import kind_of

    kinds = [kind_of(k) for k in kind.split(",") if k]
    if name and len(kinds) > 1:
        raise InvalidInput("a NAME can be given only with a single KIND.")
    out = ctx(c).output
    collected: list[dict[str, Any]] = []
    for i, k in enumerate(kinds):
        params: dict[str, str] = {"namespace": "*" if all_namespaces else namespace}
        if name:
            params["objName"] = name
        items = ctx(c).client.get(f"/members/{_m(c)}/kube/{k}", params=params)
        collected.extend(items)
        if out not in ("table", "wide"):
            continue
        if i:
            print()
        if not items:
            print(f"No {k} resources found" + ("." if all_namespaces else f" in {namespace} namespace."))
            continue
        cols = COLUMNS.get(
            k, [("NAMESPACE", lambda o: o["metadata"].get("namespace")), ("NAME", lambda o: o["metadata"]["name"])]
        )
        if k == "Pod" and out == "wide":
            cols = cols + WIDE_POD
        emit(items, "table", cols)
    if out not in ("table", "wide"):
        emit(collected[0] if name and collected else collected, out)


@app.command("delete")
def delete(
    c: typer.Context,
    kind: str | None = typer.Argument(None),
    name: str | None = typer.Argument(None),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    filename: str | None = typer.Option(None, "-f", "--filename"),
) -> None:
    """Delete objects by KIND NAME or from a file."""
    body: dict[str, Any] = {"kind": kind, "name": name, "namespace": namespace}
    if filename:
        body = {"manifest": _read(filename)[0]}
    out = ctx(c).client.post(f"/members/{_m(c)}/kube/delete", json=body)
    for r in out:
        print(f'{r["kind"].lower()} "{r["name"]}" deleted')


@app.command("annotate")
def annotate(
    c: typer.Context,
    kind: str,
    name: str,
    pairs: list[str] = typer.Argument(..., help="key=value to set, key- to remove"),
    namespace: str = typer.Option("default", "-n", "--namespace"),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Set or remove annotations (service.cilium.io/global=true, service.cilium.io/shared=false, ...)."""
    ann: dict[str, str | None] = {}
    for p in pairs:
        if p.endswith("-") and "=" not in p:
            ann[p[:-1]] = None
        elif "=" in p:
            k, v = p.split("=", 1)
            ann[k] = v
        else:
            raise InvalidInput(f"annotation {p!r} must be key=value or key-.")
    ctx(c).client.post(
        f"/members/{_m(c)}/kube/annotate",
        json={"kind": kind, "name": name, "namespace": namespace, "annotations": ann, "overwrite": overwrite},
    )
    print(f"{kind.lower()}/{name} annotated")


@app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def exec_(
    c: typer.Context,
    pod: str,
    namespace: str = typer.Option("default", "-n", "--namespace"),
    command: list[str] = typer.Argument(None, help="-- CMD ARGS..."),
) -> None:
    """Run a command inside a pod's network namespace (like kubectl exec)."""
    argv = list(command or []) + list(c.args)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise InvalidInput(
            "give the command to run after --, for example: kubectl c1 exec client -- fleetnet probe URL"
        )
    items = ctx(c).client.get(f"/members/{_m(c)}/kube/Pod", params={"namespace": namespace, "objName": pod})
    netns = dig(items[0], "status", "fleetnet", "netns")
    if not netns or dig(items[0], "status", "phase") != "Running":
        raise NotFound(f"pod {pod} in namespace {namespace} is not running yet.")
    from fleetnet.local import procs

    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["FLEETNET_HOME"] = str(ctx(c).home)
    procs.exec_in_netns(netns, argv, env=env)
