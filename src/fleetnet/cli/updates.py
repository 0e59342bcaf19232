"""`fleetnet updatestrategy | updaterun | gate ...` and `fleetnet versions` (staged upgrades).

``updaterun show`` prints the run as a tree: run → stages → groups → members, with gates, the
mesh health check and the after-stage wait at their places, each with its state. ``updaterun
wait`` follows a run until it rests, live on a terminal.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import typer
from rich.live import Live
from rich.table import Table

from fleetnet.cli.common import ctx
from fleetnet.cli.output import console, dig, emit
from fleetnet.errors import DaemonNotRunning, FleetnetError, InvalidInput, SystemFailure

strategy_app = typer.Typer(help="Update strategies: stages of update groups, waits and approval gates.")
run_app = typer.Typer(help="Update runs: staged Kubernetes (and bundled Cilium) upgrades of members.")
gate_app = typer.Typer(help="Gates of update runs (approvals).")

RESTING = ("Completed", "Skipped", "Failed", "Stopped")
POLL = 0.25


def _read_stages(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except OSError as e:
        raise InvalidInput(f"cannot read the stages file {path}: {e.strerror}.") from e
    try:
        return json.loads(text)
    except ValueError as e:
        raise InvalidInput(f"the stages file {path} is not valid JSON ({e}); fix the JSON and try again.") from e


# ---------------------------------------------------------------- versions


def versions(c: typer.Context) -> None:
    """The Kubernetes versions fleetnet can upgrade to and the Cilium version bundled with each."""
    try:
        data = ctx(c).client.get("/versions")
    except DaemonNotRunning:
        from fleetnet.plan.versions import load_catalog  # the same data the daemon serves

        data = load_catalog().to_json()
    if ctx(c).output != "table":
        emit(data, ctx(c).output)
        return
    emit(
        data["versions"],
        "table",
        [
            ("KUBERNETES", lambda v: v["kubernetes"]),
            ("CILIUM", lambda v: v["cilium"]),
            ("MESH", lambda v: "yes" if v["meshSupported"] else "no"),
            ("UPGRADES TO", lambda v: ", ".join(v["upgrades"]) or "—"),
        ],
    )
    console.print(
        f"Cross-cluster networks need Kubernetes ≥ {data['meshMinimumKubernetes']}; members of one network may "
        "run Cilium at most one minor version apart.",
        highlight=False,
    )


# ---------------------------------------------------------------- strategies

STRATEGY_COLUMNS = [
    ("NAME", lambda s: s["name"]),
    ("STAGES", lambda s: " → ".join(st["name"] for st in s["strategy"]["stages"])),
    ("GROUPS", lambda s: ", ".join(g["name"] for st in s["strategy"]["stages"] for g in st["groups"])),
]


@strategy_app.command("create")
def strategy_create(
    c: typer.Context,
    name: str,
    stages: str = typer.Option(..., "--stages", help="JSON file with {\"stages\": [...]} ('-' for stdin)."),
) -> None:
    """Create an update strategy (or replace its stages; runs made from it keep their copy)."""
    doc = ctx(c).client.put(f"/updateStrategies/{name}", json={"strategy": _read_stages(stages)})
    emit([doc], ctx(c).output, STRATEGY_COLUMNS)


@strategy_app.command("list")
def strategy_list(c: typer.Context) -> None:
    """List update strategies."""
    emit(ctx(c).client.get("/updateStrategies"), ctx(c).output, STRATEGY_COLUMNS)


def _gates(gates: list[dict[str, Any]]) -> str:
    return ", ".join(g.get("displayName") or g["type"] for g in gates)


@strategy_app.command("show")
def strategy_show(c: typer.Context, name: str) -> None:
    """A strategy's stages and groups, with their concurrency, gates, waits and mesh checks."""
    doc = ctx(c).client.get(f"/updateStrategies/{name}")
    if ctx(c).output != "table":
        emit(doc, ctx(c).output)
        return
    console.print(f"update strategy {name}", highlight=False)
    rows = [
        {**g, "_stage": st}
        for st in doc["strategy"]["stages"]
        for g in st["groups"]  # one row per group, the stage's settings on its row
    ]
    emit(
        rows,
        "table",
        [
            ("STAGE", lambda r: r["_stage"]["name"]),
            ("GROUP", lambda r: r["name"]),
            ("GROUP CONCURRENCY", lambda r: r.get("maxConcurrency", "1")),
            ("GROUP GATES", lambda r: _gates(r.get("beforeGates", []) + r.get("afterGates", []))),
            ("STAGE GATES", lambda r: _gates(r["_stage"].get("beforeGates", []) + r["_stage"].get("afterGates", []))),
            ("WAIT (s)", lambda r: r["_stage"].get("afterStageWaitInSeconds", 0)),
            ("MESH CHECK", lambda r: "yes" if r["_stage"].get("meshHealthCheck") else "no"),
        ],
    )


@strategy_app.command("delete")
def strategy_delete(c: typer.Context, name: str) -> None:
    """Delete a strategy (runs made from it keep their copy)."""
    ctx(c).client.delete(f"/updateStrategies/{name}")
    if ctx(c).output == "table":
        print(f"update strategy {name} deleted")
    else:
        emit({"deleted": name}, ctx(c).output)


# ---------------------------------------------------------------- runs


def _state(x: dict[str, Any]) -> str:
    return str(dig(x, "status", "state", default=""))


def _seconds(status: dict[str, Any], now: float) -> str:
    start, end = status.get("startTime"), status.get("completedTime")
    if start is None:
        return ""
    return f"{(end if end is not None else now) - start:.1f}"


def _goal(run: dict[str, Any]) -> str:
    upgrade = run["managedClusterUpdate"]["upgrade"]
    version = upgrade.get("kubernetesVersion")
    return f"{upgrade['type']}" + (f" → Kubernetes {version}" if version else "")


def _members(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for st in run["status"]["stages"] for g in st["groups"] for m in g["members"]]


def _progress(run: dict[str, Any]) -> str:
    members = _members(run)
    done = sum(1 for m in members if _state(m) in ("Completed", "Skipped"))
    return f"{done}/{len(members)}"


def run_rows(run: dict[str, Any], now: float) -> list[tuple[str, str, str, str]]:
    """The tree of a run as (name, state, seconds, detail) rows, indented by depth."""
    rows: list[tuple[str, str, str, str]] = []

    def gate_rows(gates: list[dict[str, Any]], timing: str, indent: str) -> None:
        for g in gates:
            label = f'{indent}{timing} gate "{g["displayName"]}"' if g.get("displayName") else f"{indent}{timing} gate"
            detail = ""
            if g.get("gateId"):
                detail = f"gate {g['gateId']}"
                if _state(g) == "Pending":
                    detail += f": `fleetnet gate approve {g['gateId']}`"
            rows.append((label, _state(g), _seconds(g["status"], now), detail))

    status = run["status"]["status"]
    error = dig(status, "error", "message", default="")
    strategy = run.get("updateStrategyName") or ("own stages" if run.get("strategy") else "one by one")
    rows.append(
        (
            f"run {run['name']}",
            status["state"],
            _seconds(status, now),
            f"{_goal(run)}; {strategy}; {_progress(run)} members done" + (f"; {error}" if error else ""),
        )
    )
    for st in run["status"]["stages"]:
        rows.append(
            (
                f"  stage {st['name']}",
                _state(st),
                _seconds(st["status"], now),
                dig(st, "status", "error", "message", default="")
                + (" (skip requested)" if st["skipRequested"] else ""),
            )
        )
        gate_rows(st["beforeGates"], "before", "    ")
        for g in st["groups"]:
            rows.append(
                (
                    f"    group {g['name']}",
                    _state(g),
                    _seconds(g["status"], now),
                    f"concurrency {g['maxConcurrency']}" + ("; skip requested" if g["skipRequested"] else ""),
                )
            )
            gate_rows(g["beforeGates"], "before", "      ")
            for m in g["members"]:
                rows.append((f"      member {m['name']}", _state(m), _seconds(m["status"], now), m.get("message", "")))
            gate_rows(g["afterGates"], "after", "      ")
        mesh = st.get("meshHealthCheckStatus")
        if mesh is not None:
            rows.append(("    mesh health check", _state(mesh), _seconds(mesh["status"], now), mesh.get("message", "")))
        wait = st["afterStageWaitStatus"]
        if wait["waitDurationInSeconds"] or _state(wait) not in ("NotStarted", "Completed"):
            rows.append(
                (
                    f"    after-stage wait {wait['waitDurationInSeconds']} s",
                    _state(wait),
                    _seconds(wait["status"], now),
                    "",
                )
            )
        gate_rows(st["afterGates"], "after", "    ")
    return rows


def run_table(run: dict[str, Any], title: str | None = None) -> Table:
    t = Table(box=None, pad_edge=False, header_style="bold", title=title, title_justify="left")
    for col in ("NAME", "STATE", "SECONDS", "DETAIL"):
        t.add_column(col, no_wrap=col != "DETAIL")
    for name, state, secs, detail in run_rows(run, time.time()):
        t.add_row(name, state, secs, detail)
    return t


def show_run(c: typer.Context, run: dict[str, Any]) -> None:
    if ctx(c).output == "table":
        console.print(run_table(run))
    else:
        emit(run, ctx(c).output)


RUN_COLUMNS = [
    ("NAME", lambda r: r["name"]),
    ("STATE", lambda r: r["status"]["status"]["state"]),
    ("UPGRADE", _goal),
    ("STRATEGY", lambda r: r.get("updateStrategyName") or ("own stages" if r.get("strategy") else "one by one")),
    ("MEMBERS DONE", _progress),
    ("FAILURES", lambda r: r["status"]["failureCount"]),
    ("ERROR", lambda r: dig(r, "status", "status", "error", "message")),
]


@run_app.command("create")
def run_create(
    c: typer.Context,
    name: str,
    upgrade_type: str = typer.Option(..., "--upgrade-type", help="Full|ControlPlaneOnly|NodeImageOnly"),
    kubernetes_version: str | None = typer.Option(None, "--kubernetes-version", help="Required unless NodeImageOnly."),
    node_image_selection: str | None = typer.Option(None, "--node-image-selection", help="Latest|Consistent"),
    update_strategy_name: str | None = typer.Option(None, "--update-strategy-name", help="Copy this strategy."),
    stages: str | None = typer.Option(None, "--stages", help="Or a JSON file with the run's own stages."),
) -> None:
    """Create an update run (it does nothing until `updaterun start`)."""
    if update_strategy_name is not None and stages is not None:
        raise InvalidInput("give either --update-strategy-name or --stages, not both.")
    upgrade: dict[str, Any] = {"type": upgrade_type}
    if kubernetes_version is not None:
        upgrade["kubernetesVersion"] = kubernetes_version
    update: dict[str, Any] = {"upgrade": upgrade}
    if node_image_selection is not None:
        update["nodeImageSelection"] = {"type": node_image_selection}
    body: dict[str, Any] = {"managedClusterUpdate": update}
    if update_strategy_name is not None:
        body["updateStrategyName"] = update_strategy_name
    if stages is not None:
        body["strategy"] = _read_stages(stages)
    show_run(c, ctx(c).client.put(f"/updateRuns/{name}", json=body))


@run_app.command("start")
def run_start(c: typer.Context, name: str) -> None:
    """Start a run, or restart a stopped or failed one at its first unprocessed member."""
    show_run(c, ctx(c).client.post(f"/updateRuns/{name}/start"))


@run_app.command("stop")
def run_stop(c: typer.Context, name: str) -> None:
    """Stop a run: upgrades under way finish, nothing new starts."""
    show_run(c, ctx(c).client.post(f"/updateRuns/{name}/stop"))


@run_app.command("show")
def run_show(c: typer.Context, name: str) -> None:
    """The run → stages → groups → members, each with its state."""
    show_run(c, ctx(c).client.get(f"/updateRuns/{name}"))


@run_app.command("list")
def run_list(c: typer.Context) -> None:
    """List update runs."""
    emit(ctx(c).client.get("/updateRuns"), ctx(c).output, RUN_COLUMNS)


@run_app.command("delete")
def run_delete(c: typer.Context, name: str) -> None:
    """Delete a run and its gates (refused while it runs)."""
    ctx(c).client.delete(f"/updateRuns/{name}")
    if ctx(c).output == "table":
        print(f"update run {name} deleted")
    else:
        emit({"deleted": name}, ctx(c).output)


@run_app.command("skip")
def run_skip(
    c: typer.Context,
    name: str,
    more: list[str] | None = typer.Argument(None, help="More targets after the first, as in --targets A B."),
    targets: list[str] | None = typer.Option(
        None, "--targets", help="Type:Name: Member:X Group:Y Stage:Z AfterStageWait:Z"
    ),
) -> None:
    """Skip members, groups, stages or after-stage waits: `--targets Member:c3 AfterStageWait:canary`."""
    every = list(targets or []) + list(more or [])
    if not every:
        raise InvalidInput("name what to skip with --targets, such as --targets Member:c3 AfterStageWait:canary.")
    body: dict[str, list[dict[str, str]]] = {"targets": []}
    for t in every:
        kind, sep, target = t.partition(":")
        if not sep or not kind or not target:
            raise InvalidInput(f"skip target {t!r} is not Type:Name; write it like Group:my-group.")
        body["targets"].append({"type": kind, "name": target})
    show_run(c, ctx(c).client.post(f"/updateRuns/{name}/skip", json=body))


def _waiting_for(run: dict[str, Any]) -> str:
    pending = [
        g["gateId"]
        for st in run["status"]["stages"]
        for gates in (
            st["beforeGates"],
            st["afterGates"],
            *(x for g in st["groups"] for x in (g["beforeGates"], g["afterGates"])),
        )
        for g in gates
        if _state(g) == "Pending" and g.get("gateId")
    ]
    return "; waiting for approval: " + ", ".join(f"`fleetnet gate approve {g}`" for g in pending) if pending else ""


@run_app.command("wait")
def run_wait(
    c: typer.Context,
    name: str,
    timeout: float = typer.Option(600.0, "--timeout", help="Seconds."),
    state: str | None = typer.Option(None, "--state", help="Wait for this state instead of the end of the run."),
) -> None:
    """Follow a run until it is Completed, Skipped, Failed or Stopped (or reaches --state)."""
    cx = ctx(c)
    start = time.monotonic()
    live = cx.output == "table" and console.is_terminal
    last = ""
    with Live(console=console, transient=True, auto_refresh=False) if live else _Null() as lv:
        while True:
            run = cx.client.get(f"/updateRuns/{name}")
            current = run["status"]["status"]["state"]
            if live:
                title = f"update run {name}: {current} ({time.monotonic() - start:.0f} s){_waiting_for(run)}"
                lv.update(run_table(run, title), refresh=True)
            elif cx.output == "table" and current != last:
                print(f"update run {name}: {current}{_waiting_for(run)}", file=sys.stderr, flush=True)
            last = current
            if current == state or current in RESTING:
                break  # there, or resting elsewhere (it would not move on without a request)
            if time.monotonic() - start > timeout:
                raise SystemFailure(
                    f"update run {name} is {current} after {timeout:.0f} s{_waiting_for(run)}; "
                    f"`fleetnet updaterun show {name}` shows where it is."
                )
            time.sleep(POLL)
    show_run(c, run)
    want = state or "Completed"
    if current == want or (state is None and current == "Skipped"):
        return
    error = dig(run, "status", "status", "error", "message")
    raise FleetnetError(f"update run {name} is {current}, not {want}" + (f": {error}" if error else "."))


class _Null:
    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *a: object) -> None:
        return None

    def update(self, *a: object, **k: object) -> None:
        return None


# ---------------------------------------------------------------- gates

GATE_COLUMNS = [
    ("ID", lambda g: g["name"]),
    ("RUN", lambda g: dig(g, "properties", "target", "updateRunProperties", "name")),
    ("STAGE", lambda g: dig(g, "properties", "target", "updateRunProperties", "stage")),
    ("GROUP", lambda g: dig(g, "properties", "target", "updateRunProperties", "group", default="—")),
    ("TIMING", lambda g: dig(g, "properties", "target", "updateRunProperties", "timing")),
    ("TYPE", lambda g: dig(g, "properties", "gateType")),
    ("DISPLAY NAME", lambda g: dig(g, "properties", "displayName")),
    ("STATE", lambda g: dig(g, "properties", "state")),
]


@gate_app.command("list")
def gate_list(
    c: typer.Context,
    state: str | None = typer.Option(None, "--state", help="Pending|Skipped|Completed"),
    gate_type: str | None = typer.Option(None, "--gate-type", help="Approval"),
) -> None:
    """Gates the update runs have reached."""
    params = {k: v for k, v in (("state", state), ("gateType", gate_type)) if v is not None}
    emit(ctx(c).client.get("/gates", params=params), ctx(c).output, GATE_COLUMNS)


@gate_app.command("show")
def gate_show(c: typer.Context, gate_id: str) -> None:
    """One gate and where it stands in its run."""
    emit([ctx(c).client.get(f"/gates/{gate_id}")], ctx(c).output, GATE_COLUMNS)


@gate_app.command("approve")
def gate_approve(c: typer.Context, gate_id: str) -> None:
    """Approve a Pending gate: its update run moves on."""
    gate = ctx(c).client.post(f"/gates/{gate_id}/approve")
    if ctx(c).output == "table":
        run = dig(gate, "properties", "target", "updateRunProperties", "name")
        print(f"gate {gate_id} approved; update run {run} moves on")
    else:
        emit(gate, ctx(c).output)
