"""The generated references: the CLI tree holds every command DESIGN.md promises, and the files under
docs/ are what the code generates now (no root needed: nothing is started)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from fleetnet import docsgen
from fleetnet.docsgen import CommandDoc

DOCS = Path(__file__).resolve().parents[1] / "docs"
REGENERATE = "run `python -m fleetnet.docsgen` (from the repository root) and commit the result"

# The command line of DESIGN.md ("stable: scripts and tests depend on it").
DESIGN_TOP_LEVEL = (
    "up",
    "down",
    "status",
    "demo",
    "member",
    "clustermeshprofile",
    "kubectl",
    "cilium",
    "updatestrategy",
    "updaterun",
    "gate",
    "versions",
    "serve",
    "probe",
)
DESIGN_SUBCOMMANDS = (
    "member create",
    "member list",
    "member show",
    "member update",
    "member delete",
    "clustermeshprofile create",
    "clustermeshprofile apply",
    "clustermeshprofile list",
    "clustermeshprofile show",
    "clustermeshprofile list-members",
    "clustermeshprofile delete",
    "clustermeshprofile wait",
    "member get-credentials",
    "kubectl",
    "cilium status",
    "cilium clustermesh status",
    "cilium service list",
    "cilium bpf lb list",
    "cilium identity list",
    "cilium policy get",
    "cilium policy trace",
    "updatestrategy create",
    "updatestrategy list",
    "updatestrategy show",
    "updatestrategy delete",
    "updaterun create",
    "updaterun start",
    "updaterun stop",
    "updaterun show",
    "updaterun list",
    "updaterun wait",
    "updaterun delete",
    "updaterun skip",
    "gate list",
    "gate approve",
)


@pytest.fixture(scope="module")
def commands() -> list[CommandDoc]:
    return docsgen.walk_cli()


@pytest.fixture(scope="module")
def cli_md() -> str:
    return docsgen.cli_reference()


@pytest.mark.parametrize("name", DESIGN_TOP_LEVEL)
def test_every_top_level_command_of_the_design_is_in_the_reference(name: str, cli_md: str) -> None:
    assert f"\n## fleetnet {name}\n" in cli_md, f"`fleetnet {name}` is in DESIGN.md but not registered in the CLI"


@pytest.mark.parametrize("path", DESIGN_SUBCOMMANDS)
def test_every_subcommand_of_the_design_is_in_the_tree(path: str, commands: list[CommandDoc]) -> None:
    titles = {c.title for c in commands}
    assert f"fleetnet {path}" in titles


def test_every_command_has_a_usage_line(commands: list[CommandDoc]) -> None:
    assert [c.title for c in commands if not c.usage.startswith(c.path[0])] == []


def test_the_walk_reads_usage_help_arguments_options_and_subcommands() -> None:
    app = typer.Typer(help="Top help.", add_completion=False)
    sub = typer.Typer(help="Things.")
    app.add_typer(sub, name="thing")

    @sub.command("make")
    def make(
        name: str = typer.Argument(..., help="What to call it."),
        size: int = typer.Option(3, "--size", help="How big."),
    ) -> None:
        """Make a thing."""

    @sub.command("secret", hidden=True)
    def secret() -> None:
        """Not shown."""

    docs = docsgen.walk_cli(app, prog="tool")
    assert [c.title for c in docs] == ["tool", "tool thing", "tool thing make"]
    make_doc = docs[2]
    assert make_doc.usage.startswith("tool thing make [OPTIONS]")
    assert make_doc.help == "Make a thing."
    assert [name for name, _ in make_doc.arguments] == ["name <str>"]
    assert make_doc.arguments[0][1].startswith("What to call it.")
    assert make_doc.options == (("--size <int>", "How big. [default: 3]"),)
    assert docs[1].subcommands == (("make", "Make a thing."),)


def test_table_cells_escape_pipes_and_fold_lines() -> None:
    assert docsgen._cell("table|json\n  yaml") == "table\\|json yaml"


def test_docs_cli_md_is_up_to_date(cli_md: str) -> None:
    path = DOCS / "cli.md"
    assert path.exists(), f"{path} is missing; {REGENERATE}"
    assert path.read_text(encoding="utf-8") == cli_md, f"{path} is out of date; {REGENERATE}"


def test_docs_api_md_and_openapi_json_are_up_to_date() -> None:
    doc = docsgen.openapi_document()
    assert "/clusterMeshProfiles/{name}/apply" in doc["paths"]
    for name, text in (("api.md", docsgen.render_api(doc)), ("openapi.json", docsgen.openapi_json(doc))):
        path = DOCS / name
        assert path.exists(), f"{path} is missing; {REGENERATE}"
        assert path.read_text(encoding="utf-8") == text, f"{path} is out of date; {REGENERATE}"
    assert json.loads((DOCS / "openapi.json").read_text()) == doc


def test_check_reports_stale_files_and_writing_fixes_them(tmp_path: Path) -> None:
    assert docsgen.main(["--out", str(tmp_path), "--check"]) == 1
    assert docsgen.main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["api.md", "cli.md", "openapi.json"]
    assert docsgen.main(["--out", str(tmp_path), "--check"]) == 0
