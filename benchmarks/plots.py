"""PNG figures of benchmark tables (matplotlib, no display): each figure draws fleetnet's numbers and the
baseline measured in the same run on the same axes, and names the machine it ran on."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.report import Report, Table


def slug(title: str) -> str:
    return "bench-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60]


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def draw(table: Table, machine: str, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot = table.plot
    if plot is None or plot.x not in table.columns:
        return False
    xi = table.columns.index(plot.x)
    gi = table.columns.index(plot.group) if plot.group in table.columns else None
    groups = sorted({str(r[gi]) for r in table.rows}) if gi is not None else [""]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    drawn = 0
    for g in groups:
        rows = [r for r in table.rows if gi is None or str(r[gi]) == g]
        for col in plot.series:
            if col not in table.columns:
                continue
            ci = table.columns.index(col)
            pts = [(x, y) for r in rows if (x := _number(r[xi])) is not None and (y := _number(r[ci])) is not None]
            if not pts:
                continue
            pts.sort()
            label = f"{col} ({g})" if g else col
            style = "--" if table.baseline is not None and col == table.baseline.column else "-"
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", label=label)
            drawn += 1
    if not drawn:
        plt.close(fig)
        return False
    if plot.logx:
        ax.set_xscale("log")
    ax.set_xlabel(plot.xlabel)
    ax.set_ylabel(plot.ylabel)
    ax.set_title(table.title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, machine, fontsize=6, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


def draw_figures(report: Report, out_dir: Path) -> dict[str, Path]:
    """Every table with a plot, drawn; returns title → PNG path."""
    m = report.machine
    machine = ", ".join(v for k in ("CPU", "cores", "memory", "kernel") if (v := m.get(k)))
    machine = f"{machine}; run {report.started}"
    out: dict[str, Path] = {}
    for r in report.results:
        for t in r.tables:
            path = out_dir / f"{slug(t.title)}.png"
            if draw(t, machine, path):
                out[t.title] = path
    return out
