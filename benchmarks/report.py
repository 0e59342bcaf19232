"""Benchmark results: the table type every benchmark returns, and the three ways a run is reported.

A benchmark returns ``Table`` values; this module turns a run's tables into a console report (rich),
a JSON record (``benchmarks/results/latest.json`` by default) and the Markdown page
``docs/benchmarks.md``, each with the machine the numbers came from. Numbers without the machine
and without a baseline measured in the same run mean little on a shared 2-core host, so a table can
name a baseline column and the report adds the ratio itself: every benchmark states its ratio the
same way (> 1 means fleetnet did better than the baseline).
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

Cell = str | int | float | None

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO / "benchmarks" / "results" / "latest.json"
DEFAULT_DOCS = REPO / "docs" / "benchmarks.md"
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Baseline:
    """Which column holds the baseline (measured in the same run) and which column it is compared with.

    The report appends a ratio column: ``column / versus`` when lower is better (times), ``versus /
    column`` when higher is better (rates), so a ratio above 1 always means fleetnet did better.
    """

    column: str
    versus: str
    ratio_title: str = "ratio"
    lower_is_better: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "versus": self.versus,
            "ratioTitle": self.ratio_title,
            "lowerIsBetter": self.lower_is_better,
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Baseline:
        return Baseline(
            column=str(d["column"]),
            versus=str(d["versus"]),
            ratio_title=str(d.get("ratioTitle", "ratio")),
            lower_is_better=bool(d.get("lowerIsBetter", True)),
        )


@dataclass(frozen=True, slots=True)
class Plot:
    """How to draw a table as a figure: ``x`` against each of ``series`` (columns of the table), so the
    baseline measured in the same run is drawn beside fleetnet's numbers."""

    x: str
    series: Sequence[str]
    xlabel: str
    ylabel: str
    logx: bool = False
    group: str | None = None  # a column whose values split the rows into one line per value

    def to_dict(self) -> dict[str, Any]:
        return {
            "x": self.x,
            "series": list(self.series),
            "xlabel": self.xlabel,
            "ylabel": self.ylabel,
            "logx": self.logx,
            "group": self.group,
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Plot:
        return Plot(
            x=str(d["x"]),
            series=[str(c) for c in d["series"]],
            xlabel=str(d["xlabel"]),
            ylabel=str(d["ylabel"]),
            logx=bool(d.get("logx", False)),
            group=d.get("group"),
        )


@dataclass(frozen=True, slots=True)
class Table:
    """One result table. Cells are raw values (floats are rounded only when shown)."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    notes: Sequence[str] = ()
    baseline: Baseline | None = None
    precision: int = 2
    plot: Plot | None = None

    def __post_init__(self) -> None:
        # frozen: store tuples, so a table cannot change after a benchmark hands it over
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "rows", tuple(tuple(r) for r in self.rows))
        object.__setattr__(self, "notes", tuple(self.notes))
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"table {self.title!r} repeats a column name: {list(self.columns)}.")
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.title!r}: row {i} has {len(row)} cells for {len(self.columns)} columns.")
        if self.baseline is not None:
            for col in (self.baseline.column, self.baseline.versus):
                if col not in self.columns:
                    raise ValueError(f"table {self.title!r}: baseline column {col!r} is not one of its columns.")
            if self.baseline.ratio_title in self.columns:
                raise ValueError(f"table {self.title!r}: the ratio title {self.baseline.ratio_title!r} is a column.")

    def ratios(self) -> list[float | None]:
        """The ratio of each row (None where a value is missing, not a number, or zero)."""
        if self.baseline is None:
            return []
        b = self.columns.index(self.baseline.column)
        v = self.columns.index(self.baseline.versus)
        return [ratio(row[b], row[v], lower_is_better=self.baseline.lower_is_better) for row in self.rows]

    def shown(self) -> tuple[list[str], list[list[str]]]:
        """Header and formatted rows, with the ratio column appended when the table has a baseline."""
        header = list(self.columns)
        body = [[format_cell(c, self.precision) for c in row] for row in self.rows]
        if self.baseline is not None:
            header.append(self.baseline.ratio_title)
            for cells, r in zip(body, self.ratios(), strict=True):
                cells.append(format_ratio(r))
        return header, body

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [list(r) for r in self.rows],
            "notes": list(self.notes),
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "ratios": self.ratios(),
            "precision": self.precision,
            "plot": None if self.plot is None else self.plot.to_dict(),
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Table:
        return Table(
            title=str(d["title"]),
            columns=[str(c) for c in d["columns"]],
            rows=d["rows"],
            notes=[str(n) for n in d.get("notes", [])],
            baseline=None if d.get("baseline") is None else Baseline.from_dict(d["baseline"]),
            precision=int(d.get("precision", 2)),
            plot=None if d.get("plot") is None else Plot.from_dict(d["plot"]),
        )


@dataclass(frozen=True, slots=True)
class BenchResult:
    name: str
    description: str
    seconds: float
    tables: Sequence[Table] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "seconds": self.seconds,
            "error": self.error,
            "tables": [t.to_dict() for t in self.tables],
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> BenchResult:
        return BenchResult(
            name=str(d["name"]),
            description=str(d["description"]),
            seconds=float(d["seconds"]),
            tables=tuple(Table.from_dict(t) for t in d.get("tables", [])),
            error=d.get("error"),
        )


@dataclass(frozen=True, slots=True)
class Report:
    started: str
    quick: bool
    machine: Mapping[str, str]
    results: Sequence[BenchResult] = field(default_factory=tuple)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if r.error is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "formatVersion": FORMAT_VERSION,
            "started": self.started,
            "quick": self.quick,
            "machine": dict(self.machine),
            "results": [r.to_dict() for r in self.results],
        }

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> Report:
        return Report(
            started=str(d["started"]),
            quick=bool(d["quick"]),
            machine={str(k): str(v) for k, v in d["machine"].items()},
            results=tuple(BenchResult.from_dict(r) for r in d["results"]),
        )


# ---------------------------------------------------------------- formatting


def ratio(baseline: Cell, versus: Cell, *, lower_is_better: bool = True) -> float | None:
    if not _is_number(baseline) or not _is_number(versus):
        return None
    b, v = float(baseline), float(versus)  # type: ignore[arg-type]
    num, den = (b, v) if lower_is_better else (v, b)
    return None if den == 0 else num / den


def _is_number(c: Cell) -> bool:
    return isinstance(c, int | float) and not isinstance(c, bool)


def format_cell(c: Cell, precision: int = 2) -> str:
    if c is None:
        return "—"
    if isinstance(c, bool):
        return "yes" if c else "no"
    if isinstance(c, float):
        return f"{c:.{precision}f}"
    return str(c)


def format_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.1f}×"


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# ---------------------------------------------------------------- the machine


def _first(text: str, key: str) -> str | None:
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep and k.strip() == key:
            return v.strip()
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _command(argv: Sequence[str]) -> str | None:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def etcd_version(binary: str | None = None) -> str:
    if binary is None:
        # the binary fleetnet starts, not whichever etcd is first on PATH (imported by name: fleetnet
        # ships no py.typed, and mypy checks this folder on its own)
        binary = str(importlib.import_module("fleetnet.kvstore.server").ETCD_BINARY)
    out = _command([binary, "--version"])
    if out is None:
        return f"not found ({binary})"
    return _first(out, "etcd Version") or out.strip().splitlines()[0]


def git_revision(repo: Path = REPO) -> str:
    rev = _command(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    if rev is None:
        return "unknown"
    dirty = _command(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"])
    return rev.strip() + (" (with uncommitted changes)" if dirty else "")


def machine_info(proc: Path = Path("/proc"), etcd: str | None = None) -> dict[str, str]:
    """The machine the numbers come from (``proc`` and ``etcd`` are parameters so tests can fake them)."""
    cpuinfo = _read(proc / "cpuinfo")
    cores = sum(1 for line in cpuinfo.splitlines() if line.startswith("processor"))
    mem_kb = _first(_read(proc / "meminfo"), "MemTotal")
    mem = "unknown"
    if mem_kb and mem_kb.split()[0].isdigit():
        mem = f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB"
    try:
        fleetnet_version = importlib.metadata.version("fleetnet")
    except importlib.metadata.PackageNotFoundError:
        fleetnet_version = "not installed"
    return {
        "CPU": _first(cpuinfo, "model name") or platform.processor() or "unknown",
        "cores": str(cores or os.cpu_count() or "unknown"),
        "memory": mem,
        "kernel": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "etcd": etcd_version(etcd),
        "fleetnet": f"{fleetnet_version}, git {git_revision()}",
        "load average before the run (1/5/15 min)": load_average(proc),
    }


def load_average(proc: Path = Path("/proc")) -> str:
    """The host's load: on a shared machine, the context every number needs."""
    load = _read(proc / "loadavg").split()
    return " / ".join(load[:3]) if len(load) >= 3 else "unknown"


# ---------------------------------------------------------------- console


def print_table(table: Table, console: Console) -> None:
    header, body = table.shown()
    t = RichTable(title=table.title, title_justify="left", title_style="bold")
    for i, col in enumerate(header):
        t.add_column(col, justify="left" if i == 0 else "right")
    for row in body:
        t.add_row(*row)
    console.print(t)
    for note in table.notes:
        console.print(f"  • {note}", style="dim", highlight=False)
    console.print()


def print_machine(machine: Mapping[str, str], console: Console) -> None:
    for k, v in machine.items():
        console.print(f"{k}: {v}", highlight=False)
    console.print()


def print_summary(report: Report, console: Console) -> None:
    """One line per benchmark (its tables were printed as it finished)."""
    console.rule("summary")
    for r in report.results:
        if r.error is None:
            console.print(f"{r.name}: done in {r.seconds:.0f} s", highlight=False)
        else:
            console.print(f"{r.name}: failed after {r.seconds:.0f} s: {r.error}", style="bold red", highlight=False)


def print_report(report: Report, console: Console) -> None:
    """The whole report: machine, every table, summary."""
    print_machine(report.machine, console)
    for r in report.results:
        console.rule(f"{r.name}: {r.description}")
        for t in r.tables:
            print_table(t, console)
    print_summary(report, console)


# ---------------------------------------------------------------- Markdown


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown_table(table: Table) -> str:
    header, body = table.shown()
    lines = [
        "| " + " | ".join(_md_escape(h) for h in header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def render_markdown(report: Report, figures: Mapping[str, str] | None = None) -> str:
    """The page; ``figures`` maps a table title to the path (relative to the page) of its PNG."""
    figures = figures or {}
    out = [
        "# Benchmarks",
        "",
        "<!-- Generated by `make bench` (python -m benchmarks.run); edits by hand are overwritten. -->",
        "",
        f"Run started {report.started}" + (" with `--quick` (fewer runs and sizes)." if report.quick else "."),
        "Every ratio compares fleetnet with a baseline measured in the same run; above 1× means fleetnet did better.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    out += [f"| {_md_escape(k)} | {_md_escape(v)} |" for k, v in report.machine.items()]
    for r in report.results:
        out += ["", f"## {r.name}", "", r.description, "", f"The benchmark took {r.seconds:.0f} s."]
        if r.error is not None:
            out += ["", f"**Failed:** {_md_escape(r.error)}"]
        for t in r.tables:
            out += ["", f"### {t.title}", "", markdown_table(t)]
            if t.title in figures:
                out += ["", f"![{_md_escape(t.title)}]({figures[t.title]})"]
            if t.notes:
                out += [""] + [f"- {n}" for n in t.notes]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- files


def write_json(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    tmp.replace(path)


def load_json(path: Path) -> Report:
    return Report.from_dict(json.loads(path.read_text()))


def write_markdown(report: Report, path: Path) -> None:
    """The page and, beside it under img/, one PNG per table that asks to be drawn."""
    from benchmarks.plots import draw_figures

    path.parent.mkdir(parents=True, exist_ok=True)
    figures = draw_figures(report, path.parent / "img")
    path.write_text(render_markdown(report, {t: f"img/{p.name}" for t, p in figures.items()}))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.report [JSON] [--docs FILE]``: show a saved run again, or re-render its page."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=main.__doc__)
    p.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--docs", type=Path, default=None, help="Also write the Markdown page to this file.")
    args = p.parse_args(sys.argv[1:] if argv is None else list(argv))
    report = load_json(args.results)
    print_report(report, Console())
    if args.docs is not None:
        write_markdown(report, args.docs)
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
