"""Figures of benchmark tables: drawn only for tables that ask, linked beside their table."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import Baseline, BenchResult, Plot, Report, Table, render_markdown, write_markdown


def report(plot: Plot | None) -> Report:
    t = Table(
        "LB scaling",
        ["services", "eBPF", "iptables"],
        [[1, 10, 9], [1000, 10, 5]],
        baseline=Baseline("iptables", "eBPF", lower_is_better=False),
        plot=plot,
    )
    return Report("2026-11-26", False, {"CPU": "x", "cores": "2"}, [BenchResult("lb", "d", 1.0, [t])])


def test_a_table_with_a_plot_gets_a_png_beside_it(tmp_path: Path) -> None:
    write_markdown(report(Plot("services", ["eBPF", "iptables"], "services", "req/s", logx=True)), tmp_path / "b.md")
    png = tmp_path / "img" / "bench-lb-scaling.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![LB scaling](img/bench-lb-scaling.png)" in (tmp_path / "b.md").read_text()


def test_no_plot_no_figure(tmp_path: Path) -> None:
    write_markdown(report(None), tmp_path / "b.md")
    assert not (tmp_path / "img").exists() or not list((tmp_path / "img").iterdir())
    assert "![" not in render_markdown(report(None))


def test_plot_survives_json_round_trip() -> None:
    r = report(Plot("services", ["eBPF"], "s", "r"))
    again = Report.from_dict(r.to_dict())
    assert again.results[0].tables[0].plot == r.results[0].tables[0].plot
