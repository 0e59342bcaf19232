"""The `fleetnet` command line: a thin client of the daemon's REST API.

``--home`` and ``-o/--output`` are accepted anywhere before ``--`` (they are moved to the front
before parsing), so ``fleetnet member list -o json`` and ``fleetnet -o json member list`` agree.
Errors are one sentence on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import typer

from fleetnet import __version__
from fleetnet.cli import cilium, kubectl, members, profiles, updates
from fleetnet.cli.common import Ctx, ctx, fail
from fleetnet.cli.output import emit
from fleetnet.errors import DaemonNotRunning, FleetnetError, InvalidInput, SystemFailure
from fleetnet.hub.paths import FleetPaths, resolve_home

app = typer.Typer(
    name="fleetnet",
    help="A fleet manager for cross-cluster networking: Cilium ClusterMesh, managed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(members.app, name="member")
app.add_typer(profiles.app, name="clustermeshprofile")
app.add_typer(kubectl.app, name="kubectl")
app.add_typer(cilium.app, name="cilium")
app.add_typer(updates.strategy_app, name="updatestrategy")
app.add_typer(updates.run_app, name="updaterun")
app.add_typer(updates.gate_app, name="gate")
app.command("versions")(updates.versions)

OUTPUTS = ("table", "json", "yaml", "wide")


@app.callback()
def root(
    c: typer.Context,
    home: str | None = typer.Option(None, "--home", help="Fleet home (default $FLEETNET_HOME, else ~/.fleetnet)."),
    output: str = typer.Option("table", "-o", "--output", help="table|json|yaml"),
) -> None:
    if output not in OUTPUTS:
        fail(f"-o {output!r} is not an output format: use table, json or yaml.", 2)
    c.obj = Ctx(home=resolve_home(home), output=output)


def _daemon_record(paths: FleetPaths) -> Path:
    return paths.daemon_record


def _stop_daemon(paths: FleetPaths, client: Any) -> None:
    """End the daemon serving this home, however it was started, and return only once it has ended.

    The daemon records itself (pid and start time) when it starts, so a foreground ``serve`` is
    found as well as one ``up`` started; a daemon that answers but left no record, or that will
    not end, is an error: the fleet is not torn down under a daemon that goes on managing it.
    """
    from fleetnet.local import procs

    rec_path = _daemon_record(paths)
    rec: procs.ProcRecord | None = None
    if rec_path.exists():
        try:
            rec = procs.ProcRecord.from_dict(json.loads(rec_path.read_text()))
        except (ValueError, FleetnetError):
            rec = None
    if rec is not None and procs.is_alive(rec):
        try:
            procs.terminate(rec, timeout=10.0)
        except FleetnetError as e:
            raise SystemFailure(f"The fleetnet daemon (pid {rec.pid}) did not stop: {e}") from e
        if procs.is_alive(rec):
            raise SystemFailure(f"The fleetnet daemon (pid {rec.pid}) is still running; stop it and run down again.")
    elif client.alive():
        raise SystemFailure(
            f"A fleetnet daemon answers on {paths.socket} but left no process record in {rec_path}; "
            "stop it (Ctrl-C or kill its pid) and run down again."
        )
    rec_path.unlink(missing_ok=True)


@app.command("up")
def up(
    c: typer.Context,
    clusters: int = typer.Option(0, "--clusters", help="Create local clusters c1..cN."),
    nodes: int = typer.Option(1, "--nodes", help="Nodes per cluster."),
    port: int | None = typer.Option(None, "--port", help="Also serve the API on 127.0.0.1:PORT."),
    timeout: float = typer.Option(30.0, "--timeout"),
) -> None:
    """Start the daemon in the background (if not running) and create local clusters."""
    from fleetnet.local import procs

    if os.geteuid() != 0:
        raise InvalidInput("fleetnet needs root (it creates network namespaces and loads eBPF): run it as root.")
    if clusters < 0 or clusters > 250:
        raise InvalidInput("--clusters must be between 0 and 250.")
    cx = ctx(c)
    paths = FleetPaths(cx.home)
    cx.home.mkdir(parents=True, exist_ok=True)
    client = cx.client
    if not client.alive():
        argv = [sys.executable, "-m", "fleetnet.cli.main", "--home", str(cx.home), "serve"]
        if port is not None:
            argv += ["--port", str(port)]
        rec = procs.spawn(argv, netns=None, log_path=str(paths.log), pid_path=str(paths.home / "daemon.pid"))
        deadline = time.monotonic() + timeout
        while not client.alive():
            if not procs.is_alive(rec):
                raise SystemFailure(f"the fleetnet daemon exited during start-up; see {paths.log}.")
            if time.monotonic() > deadline:
                raise SystemFailure(f"the fleetnet daemon did not answer within {timeout:.0f} s; see {paths.log}.")
            time.sleep(0.05)
    existing = {m["name"] for m in client.get("/members")}
    for i in range(1, clusters + 1):
        name = f"c{i}"
        if name not in existing:
            client.post("/members", json={"name": name, "nodes": nodes})
    members.show_members(c, client.get("/members"))
    if ctx(c).output == "table":
        # stderr, so `-o json` and scripts reading the table see only the members
        print(
            "each member serves the Kubernetes API: `fleetnet member get-credentials c1` adds a context "
            "for kubectl (then `kubectl --context c1 get pods`), or use `fleetnet kubectl c1 ...`",
            file=sys.stderr,
        )


@app.command("down")
def down(c: typer.Context) -> None:
    """Stop the daemon and remove every namespace, link, route, pin and process the fleet made."""
    from fleetnet.hub.teardown import teardown

    cx = ctx(c)
    paths = FleetPaths(cx.home)
    _stop_daemon(paths, cx.client)
    report = teardown(paths)
    (paths.home / "daemon.pid").unlink(missing_ok=True)
    paths.log.unlink(missing_ok=True)
    out = {
        "processes": report.processes,
        "namespaces": report.namespaces,
        "mounts": report.mounts,
        "errors": report.errors,
    }
    if cx.output == "table":
        print(
            f"fleet at {cx.home} is down: ended {report.processes} processes, removed {report.namespaces} "
            f"network namespaces and {report.mounts} bpffs mounts"
        )
        for e in report.errors:
            print(f"warning: {e}", file=sys.stderr)
    else:
        emit(out, cx.output)


@app.command("status")
def status(c: typer.Context) -> None:
    """The daemon, its members and networks."""
    s = ctx(c).client.get("/status")
    if ctx(c).output != "table":
        emit(s, ctx(c).output)
        return
    print(f"fleet home: {s['home']}  members: {s['members']}")
    emit(
        s["networks"],
        "table",
        [("NETWORK", lambda n: n["name"]), ("STATE", lambda n: n["state"]), ("MEMBERS", lambda n: n["members"])],
    )


@app.command("serve")
def serve(
    c: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int | None = typer.Option(None, "--port"),
) -> None:
    """Run the daemon in the foreground."""
    from fleetnet.hub.serve import serve as run

    run(ctx(c).home, host=host, port=port)


@app.command("probe")
def probe(
    c: typer.Context,
    url: str,
    count: int = typer.Option(1, "--count", "-c"),
    timeout: float = typer.Option(2.0, "--timeout"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the summary."),
    expect_fail: bool = typer.Option(
        False, "--expect-fail", help="A deny or isolation check: succeed only when every request fails."
    ),
) -> None:
    """A small HTTP client that says which pod answered (use it inside pods with kubectl exec).

    Exits 0 only when every request was answered, 1 when any was not (or, with --expect-fail, 0 only
    when every request failed, 1 when any was answered); stderr says which and why."""
    from fleetnet.workloads.probe import run

    if count < 1:
        raise InvalidInput("--count must be at least 1.")
    raise typer.Exit(run(url, count, timeout, ctx(c).output == "json", quiet, expect_fail=expect_fail))


@app.command("demo")
def demo(c: typer.Context, keep: bool = typer.Option(False, "--keep", help="Leave the fleet running.")) -> None:
    """The guided end-to-end demo on local clusters."""
    from fleetnet.demo import run_demo

    raise typer.Exit(run_demo(ctx(c).home, keep=keep))


@app.command("version")
def version() -> None:
    print(__version__)


def _hoist(argv: list[str]) -> list[str]:
    """Move --home/-o options that appear after the subcommand to the front (stop at '--')."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i:])
            break
        if a in ("--home", "-o", "--output") and i + 1 < len(argv):
            front += [a, argv[i + 1]]
            i += 2
            continue
        if a.startswith(("--home=", "--output=")) or (a.startswith("-o") and len(a) > 2 and not a.startswith("--")):
            front.append(a)
            i += 1
            continue
        rest.append(a)
        i += 1
    return front + rest


def _die(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def _kubectl_passthrough(argv: list[str]) -> None:
    """`fleetnet [--home H] kubectl MEMBER ARGS...`: everything after MEMBER is kubectl's, untouched
    (its own -o, -n, --, ...), so it is handed over before any fleetnet option parsing."""
    home: str | None = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--home" and i + 1 < len(argv):
            home, i = argv[i + 1], i + 2
        elif a.startswith("--home="):
            home, i = a.split("=", 1)[1], i + 1
        elif a in ("-o", "--output") and i + 1 < len(argv):
            i += 2
        elif a.startswith(("-o", "--output=")):
            i += 1
        else:
            break
    if i < len(argv) and argv[i] == "kubectl" and not (len(argv) > i + 1 and argv[i + 1] in ("--help", "-h")):
        from fleetnet.cli import kubectl as kubectl_cli

        try:
            kubectl_cli.run(home, argv[i + 1 :])
        except FleetnetError as e:
            _die(str(e), 1)


def main() -> None:
    _kubectl_passthrough(sys.argv[1:])
    argv = _hoist(sys.argv[1:])
    try:
        app(args=argv, prog_name="fleetnet", standalone_mode=False)
    except DaemonNotRunning as e:
        _die(str(e), 2)
    except FleetnetError as e:
        _die(str(e), 1)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        _die("aborted.", 1)
    except KeyboardInterrupt:
        _die("interrupted.", 130)
    except Exception as e:  # click usage errors and the like
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
