"""Rendering for every command: ``-o table`` (rich), ``json`` or ``yaml``."""

from __future__ import annotations

import json
import operator
import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

# piped output (scripts, tests) gets wide lines instead of truncated columns
console = Console(width=None if sys.stdout.isatty() else 400)
err_console = Console(stderr=True)

Column = tuple[str, Callable[[Any], Any]]


def emit(data: Any, output: str, columns: Sequence[Column] | None = None, title: str | None = None) -> None:
    if output == "json":
        print(json.dumps(data, indent=2, sort_keys=False, default=str))
    elif output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")
    else:
        rows = data if isinstance(data, list) else [data]
        if columns is None:
            if rows and isinstance(rows[0], dict):
                keys = list(rows[0].keys())
                columns = [(k, operator.itemgetter(k)) for k in keys]
            else:
                for r in rows:
                    console.print(r)
                return
        table = Table(title=title, show_header=True, header_style="bold", box=None, pad_edge=False)
        for name, _ in columns:
            table.add_column(name)
        for r in rows:
            table.add_row(*("" if (v := get(r)) is None else str(v) for _, get in columns))
        console.print(table)


def dig(d: Any, *path: str, default: Any = None) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return default
        d = d.get(p)
    return default if d is None else d
