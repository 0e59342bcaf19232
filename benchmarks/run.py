"""Entry point of ``make bench``: ``python -m benchmarks.run [--only NAME] [--quick]``.

Runs the benchmarks the registry finds, one after another (they share a 2-core machine, so never
in parallel), prints their tables, and writes the JSON record and ``docs/benchmarks.md``. A
benchmark that fails does not stop the others; the exit code is 1 if any failed. ``--quick`` runs
are smoke tests: they write the JSON record but leave the published page alone unless ``--docs``
names a file.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from benchmarks import Benchmark, discover, select
from benchmarks.report import (
    DEFAULT_DOCS,
    DEFAULT_RESULTS,
    BenchResult,
    Report,
    load_average,
    machine_info,
    now_utc,
    print_machine,
    print_summary,
    print_table,
    write_json,
    write_markdown,
)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description="Run fleetnet's benchmarks.")
    p.add_argument("--only", action="append", metavar="NAME", help="Run only this benchmark (repeatable).")
    p.add_argument("--quick", action="store_true", help="Fewer sizes and runs: a smoke test, not numbers to publish.")
    p.add_argument("--list", action="store_true", help="List the benchmarks and exit.")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help=f"JSON record (default {DEFAULT_RESULTS}).")
    docs = p.add_mutually_exclusive_group()
    docs.add_argument("--docs", type=Path, default=None, help=f"Markdown page (default {DEFAULT_DOCS}).")
    docs.add_argument("--no-docs", action="store_true", help="Do not write the Markdown page.")
    return p.parse_args(list(argv))


def run_one(b: Benchmark, quick: bool, console: Console) -> BenchResult:
    console.rule(f"{b.name}: {b.description}")
    start = time.monotonic()
    try:
        tables = tuple(b.run(quick))
    except Exception as e:
        console.print(traceback.format_exc(), style="red", highlight=False, markup=False)
        return BenchResult(b.name, b.description, time.monotonic() - start, (), f"{type(e).__name__}: {e}")
    except KeyboardInterrupt:
        # the benchmark's own finally blocks have run by now: its fleet is down
        console.print(f"{b.name} interrupted", style="red")
        raise
    result = BenchResult(b.name, b.description, time.monotonic() - start, tables)
    for t in tables:
        print_table(t, console)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)  # logs and `make bench | tee`: keep the tables' columns unwrapped
    try:
        chosen = select(discover(), args.only)
    except ValueError as e:
        console.print(str(e), style="red", highlight=False)
        return 2
    if args.list:
        for b in chosen:
            console.print(f"{b.name:<16} {b.description}", highlight=False)
        return 0
    started, machine = now_utc(), machine_info()
    print_machine(machine, console)
    results = tuple(run_one(b, args.quick, console) for b in chosen)
    machine = {**machine, "load average after the run (1/5/15 min)": load_average()}
    report = Report(started=started, quick=args.quick, machine=machine, results=results)
    print_summary(report, console)
    write_json(report, args.results)
    console.print(f"results: {args.results}", highlight=False)
    docs: Path | None = None
    if not args.no_docs:
        docs = args.docs if args.docs is not None else (None if args.quick else DEFAULT_DOCS)
    if docs is not None and report.failed:
        console.print(f"not writing {docs}: {', '.join(report.failed)} failed.", style="yellow", highlight=False)
    elif docs is not None:
        write_markdown(report, docs)
        console.print(f"page: {docs}", highlight=False)
    elif args.quick and not args.no_docs:
        console.print(f"--quick: {DEFAULT_DOCS} left as it was (give --docs FILE to write one).", highlight=False)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
