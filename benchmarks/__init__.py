"""fleetnet's benchmarks, and the registry that finds them (``make bench`` runs them all).

A benchmark is a module ``benchmarks/bench_<something>.py`` with three names:

- ``NAME``: a short name for ``--only`` (``"join"``),
- ``DESCRIPTION``: one sentence saying what is timed,
- ``run(quick: bool) -> list[Table]``: measures and returns ``benchmarks.report.Table`` values.
  ``quick`` asks for a smoke-sized run (fewer sizes and repetitions).

Each table should carry a baseline measured in the same run (``Table(baseline=Baseline(...))``); the
report adds the ratio. A benchmark makes everything it needs (its own fleet home, names with the
fleet's random prefix) and removes it in a ``finally``, even when it fails. Adding the module is
all it takes: nothing is registered by hand.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.report import Table

PREFIX = "bench_"


@dataclass(frozen=True, slots=True)
class Benchmark:
    name: str
    description: str
    module: str
    run: Callable[[bool], Sequence[Table]]


def from_module(mod: ModuleType) -> Benchmark:
    """The benchmark a module defines; ValueError naming what is missing if it is not one."""
    missing = [a for a in ("NAME", "DESCRIPTION", "run") if not hasattr(mod, a)]
    if missing:
        raise ValueError(f"benchmark module {mod.__name__} lacks {', '.join(missing)}: see benchmarks/__init__.py.")
    name, description, run = mod.NAME, mod.DESCRIPTION, mod.run
    if not isinstance(name, str) or not name or not isinstance(description, str) or not callable(run):
        raise ValueError(f"benchmark module {mod.__name__}: NAME and DESCRIPTION must be strings, run a function.")
    return Benchmark(name=name, description=description, module=mod.__name__, run=run)


def discover(package: str = __name__) -> list[Benchmark]:
    """Every ``bench_*`` module of ``package``, in module-name order; refuses two with one NAME."""
    pkg = importlib.import_module(package)
    found: list[Benchmark] = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith(PREFIX) and not info.ispkg:
            found.append(from_module(importlib.import_module(f"{package}.{info.name}")))
    names = [b.name for b in found]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"two benchmark modules share the NAME {', '.join(dupes)}; give each its own.")
    return found


def select(benchmarks: Sequence[Benchmark], only: Sequence[str] | None) -> list[Benchmark]:
    """The benchmarks named by ``--only`` (all when none is named); ValueError for an unknown name."""
    if not only:
        return list(benchmarks)
    known = {b.name: b for b in benchmarks}
    unknown = [n for n in only if n not in known]
    if unknown:
        raise ValueError(f"no benchmark is named {', '.join(unknown)}; known: {', '.join(sorted(known)) or 'none'}.")
    return [known[n] for n in dict.fromkeys(only)]
