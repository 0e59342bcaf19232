"""`fleetnet clustermeshprofile ...` (cross-cluster networks)."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.live import Live
from rich.table import Table

from fleetnet.cli.common import ctx
from fleetnet.cli.members import show_members
from fleetnet.cli.output import console, dig, emit
from fleetnet.errors import FleetnetError, InvalidInput, SystemFailure

app = typer.Typer(help="Cross-cluster networks (cluster mesh profiles).", no_args_is_help=True)

PROFILE_COLUMNS = [
    ("NAME", lambda p: p["name"]),
    ("SELECTOR", lambda p: dig(p, "properties", "memberSelector", "byLabel")),
    ("STATE", lambda p: dig(p, "properties", "status", "state")),
    ("LAST APPLIED", lambda p: dig(p, "properties", "status", "lastAppliedMemberSelector", "byLabel")),
    ("ERROR", lambda p: dig(p, "properties", "status", "lastOperationError", "message")),
]


@app.command("create")
def create(
    c: typer.Context,
    name: str,
    member_selector: str = typer.Option(..., "--member-selector", help="k=v[,k=v] (only '=' is accepted)."),
    require_global_namespace: bool | None = typer.Option(
        None,
        "--require-global-namespace/--all-namespaces-global",
        help="Share only namespaces annotated clustermesh.cilium.io/global=true (Azure's default).",
    ),
    policy_default_local_cluster: bool | None = typer.Option(
        None, "--policy-default-local-cluster/--policy-any-cluster"
    ),
    service_cache_ttl: float | None = typer.Option(None, "--service-cache-ttl", help="Seconds."),
) -> None:
    """Create a network, or change the selector of an existing one (nothing changes until apply)."""
    options: dict[str, Any] = {}
    if require_global_namespace is not None:
        options["requireGlobalNamespace"] = require_global_namespace
    if policy_default_local_cluster is not None:
        options["policyDefaultLocalCluster"] = policy_default_local_cluster
    if service_cache_ttl is not None:
        if service_cache_ttl <= 0:
            raise InvalidInput("--service-cache-ttl must be a positive number of seconds.")
        options["serviceCacheTtlSeconds"] = service_cache_ttl
    body = {"memberSelector": {"byLabel": member_selector}, "options": options or None}
    emit([ctx(c).client.put(f"/clusterMeshProfiles/{name}", json=body)], ctx(c).output, PROFILE_COLUMNS)


@app.command("list")
def list_(c: typer.Context) -> None:
    emit(ctx(c).client.get("/clusterMeshProfiles"), ctx(c).output, PROFILE_COLUMNS)


@app.command("show")
def show(c: typer.Context, name: str) -> None:
    p = ctx(c).client.get(f"/clusterMeshProfiles/{name}")
    emit(p, "yaml" if ctx(c).output == "table" else ctx(c).output)


@app.command("list-members")
def list_members(
    c: typer.Context,
    name: str,
    selector: bool = typer.Option(False, "--selector", help="Members the selector matches now (not yet applied)."),
) -> None:
    show_members(c, ctx(c).client.get(f"/clusterMeshProfiles/{name}/members", params={"selector": selector}))


@app.command("delete")
def delete(c: typer.Context, name: str, yes: bool = typer.Option(False, "--yes", "-y")) -> None:
    """Delete a network (refused while it has members)."""
    if not yes:
        typer.confirm(f"delete cross-cluster network {name}?", abort=True)
    ctx(c).client.delete(f"/clusterMeshProfiles/{name}")
    print(f"cross-cluster network {name} deleted")


WHATIF_COLUMNS = [
    ("ACTION", lambda r: r["action"]),
    ("NAME", lambda r: r["name"]),
    ("MESH STATE", lambda r: r.get("meshMembershipState")),
    ("ERROR", lambda r: r.get("errorMessage")),
]


def _members_table(members: list[dict[str, Any]], elapsed: float) -> Table:
    t = Table(box=None, title=f"applying… {elapsed:.1f} s", title_justify="left")
    for col in ("MEMBER", "CILIUM ID", "STATE", "ERROR"):
        t.add_column(col)
    for m in members:
        t.add_row(
            m["name"],
            str(dig(m, "meshProperties", "ciliumProperties", "id", default="")),
            str(dig(m, "meshProperties", "status", "state", default="left")),
            str(dig(m, "meshProperties", "status", "error", "message", default="")),
        )
    return t


@app.command("apply")
def apply(
    c: typer.Context,
    name: str,
    what_if: bool = typer.Option(False, "--what-if", help="Show what would change, change nothing."),
    no_wait: bool = typer.Option(False, "--no-wait"),
) -> None:
    """Reconcile the network's membership with its selector (long-running)."""
    cx = ctx(c)
    if what_if:
        emit(cx.client.post(f"/clusterMeshProfiles/{name}/apply", params={"whatIf": True}), cx.output, WHATIF_COLUMNS)
        return
    op = cx.client.post(f"/clusterMeshProfiles/{name}/apply")
    if no_wait:
        emit(op, cx.output if cx.output != "table" else "yaml")
        return
    start = time.monotonic()
    involved = {r["name"] for r in op.get("rows", [])}
    live = cx.output == "table" and console.is_terminal
    with Live(console=console, transient=True, auto_refresh=False) if live else _Null() as lv:
        while True:
            op = cx.client.get(f"/operations/{op['id']}")
            involved |= {r["name"] for r in op.get("rows", [])}
            members = [m for m in cx.client.get("/members") if m["name"] in involved]
            if live:
                lv.update(_members_table(members, time.monotonic() - start), refresh=True)
            if op["status"] != "Running":
                break
            time.sleep(0.2)
    profile = cx.client.get(f"/clusterMeshProfiles/{name}")
    members = [m for m in cx.client.get("/members") if m["name"] in involved]
    if cx.output == "table":
        rows = {r["name"]: r for r in op.get("rows", [])}
        emit(
            [{**m, "_action": rows.get(m["name"], {}).get("action")} for m in members] or [],
            "table",
            [
                ("ACTION", lambda m: m["_action"]),
                ("NAME", lambda m: m["name"]),
                ("CILIUM ID", lambda m: dig(m, "meshProperties", "ciliumProperties", "id")),
                ("STATE", lambda m: dig(m, "meshProperties", "status", "state", default="left the network")),
                (
                    "ERROR",
                    lambda m: (
                        dig(m, "meshProperties", "status", "error", "message") or rows.get(m["name"], {}).get("error")
                    ),
                ),
            ],
        )
        state = dig(profile, "properties", "status", "state")
        console.print(f"cross-cluster network {name}: {state} ({time.monotonic() - start:.1f} s)")
    else:
        emit({"operation": op, "profile": profile, "members": members}, cx.output)
    if op["status"] != "Succeeded":
        raise SystemFailure(f"apply of {name} failed: {op.get('error')}")
    failed = [m["name"] for m in members if dig(m, "meshProperties", "status", "state") == "Failed"]
    errors = [r["name"] for r in op.get("rows", []) if r["action"] == "Error"]
    if failed or errors:
        raise FleetnetError(
            f"apply of {name} finished, but not every member joined: "
            + ", ".join([f"{n} failed" for n in failed] + [f"{n} refused" for n in errors])
            + "; the table shows why."
        )


class _Null:
    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *a: object) -> None:
        return None

    def update(self, *a: object, **k: object) -> None:
        return None


@app.command("wait")
def wait(
    c: typer.Context,
    name: str,
    state: str = typer.Option("Connected", "--state"),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds."),
) -> None:
    """Wait until the network reaches a state."""
    deadline = time.monotonic() + timeout
    while True:
        p = ctx(c).client.get(f"/clusterMeshProfiles/{name}")
        current = dig(p, "properties", "status", "state")
        if current == state:
            print(f"cross-cluster network {name} is {state}")
            return
        if current == "Failed" and state != "Failed":
            raise SystemFailure(
                f"cross-cluster network {name} is Failed; `fleetnet clustermeshprofile show {name}` "
                "and `fleetnet member list` show why."
            )
        if time.monotonic() > deadline:
            raise SystemFailure(f"cross-cluster network {name} is {current}, not {state}, after {timeout:.0f} s.")
        time.sleep(0.2)
