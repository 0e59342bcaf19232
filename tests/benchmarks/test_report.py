"""The benchmark report on made-up results: tables, ratios, JSON, Markdown, the machine, the registry.

Nothing here needs root or starts a fleet: the join benchmark's tables come from its pure
``summarize`` fed with invented samples.
"""

from __future__ import annotations

import stat
import sys
from collections import Counter
from pathlib import Path

import pytest
from benchmarks.report import (
    Baseline,
    BenchResult,
    Report,
    Table,
    format_cell,
    load_json,
    machine_info,
    markdown_table,
    print_table,
    ratio,
    render_markdown,
    write_json,
)
from rich.console import Console

from benchmarks import Benchmark, bench_join, discover, from_module, select
from benchmarks import run as run_mod

MACHINE = {"CPU": "Fake CPU 9000", "cores": "2", "memory": "4.0 GiB", "etcd": "3.4.23"}


def times_table() -> Table:
    return Table(
        title="Join",
        columns=("clusters", "fleetnet (s)", "baseline (s)"),
        rows=[(2, 1.0, 3.0), (5, 2.0, None), (10, 0.0, 4.0)],
        notes=["what was | measured"],
        baseline=Baseline(column="baseline (s)", versus="fleetnet (s)", ratio_title="speed-up"),
    )


def fake_report(error: str | None = None) -> Report:
    rate = Table(
        title="Rate",
        columns=("what", "fleetnet/s", "baseline/s"),
        rows=[("updates", 300, 100)],
        baseline=Baseline(column="baseline/s", versus="fleetnet/s", lower_is_better=False),
    )
    return Report(
        started="2025-01-01 00:00:00 UTC",
        quick=False,
        machine=MACHINE,
        results=(
            BenchResult("join", "Joining.", 12.5, (times_table(), rate)),
            BenchResult("other", "Other.", 1.0, (), error),
        ),
    )


# ---------------------------------------------------------------- tables and ratios


def test_ratio_is_above_one_when_fleetnet_does_better() -> None:
    assert ratio(3.0, 1.0) == 3.0
    assert ratio(100, 300, lower_is_better=False) == 3.0
    assert ratio(None, 1.0) is None
    assert ratio(1.0, "x") is None
    assert ratio(1.0, 0.0) is None
    assert ratio(True, 1.0) is None


def test_shown_appends_the_ratio_column() -> None:
    header, body = times_table().shown()
    assert header == ["clusters", "fleetnet (s)", "baseline (s)", "speed-up"]
    assert body == [["2", "1.00", "3.00", "3.0×"], ["5", "2.00", "—", "—"], ["10", "0.00", "4.00", "—"]]


def test_table_without_baseline_has_no_ratio() -> None:
    t = Table(title="t", columns=("a",), rows=[(1,)])
    assert t.shown() == (["a"], [["1"]])
    assert t.ratios() == []


def test_table_stores_tuples() -> None:
    t = times_table()
    assert isinstance(t.rows, tuple) and all(isinstance(r, tuple) for r in t.rows)
    assert t.notes == ("what was | measured",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": ("a", "b"), "rows": [(1,)]}, "row 0 has 1 cells for 2 columns"),
        ({"columns": ("a", "a"), "rows": []}, "repeats a column"),
        ({"columns": ("a",), "rows": [], "baseline": Baseline(column="b", versus="a")}, "'b' is not one of"),
        (
            {"columns": ("a", "ratio"), "rows": [], "baseline": Baseline(column="ratio", versus="a")},
            "ratio title",
        ),
    ],
)
def test_table_refuses_inconsistent_shapes(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Table(title="bad", **kwargs)  # type: ignore[arg-type]


def test_format_cell() -> None:
    assert format_cell(None) == "—"
    assert format_cell(1.23456) == "1.23"
    assert format_cell(1.23456, 3) == "1.235"
    assert format_cell(7) == "7"
    assert format_cell(True) == "yes"
    assert format_cell("met") == "met"


# ---------------------------------------------------------------- JSON, Markdown, console


def test_json_round_trip(tmp_path: Path) -> None:
    report = fake_report(error="boom")
    path = tmp_path / "results" / "latest.json"
    write_json(report, path)
    again = load_json(path)
    assert again == report
    assert again.failed == ["other"]
    assert '"ratios": [\n            3.0,' in path.read_text()


def test_markdown_has_machine_tables_ratios_and_notes() -> None:
    md = render_markdown(fake_report())
    assert md.startswith("# Benchmarks\n")
    assert "| CPU | Fake CPU 9000 |" in md
    assert "| etcd | 3.4.23 |" in md
    assert "## join" in md and "### Join" in md
    assert "| clusters | fleetnet (s) | baseline (s) | speed-up |" in md
    assert "| 2 | 1.00 | 3.00 | 3.0× |" in md
    assert "| updates | 300 | 100 | 3.0× |" in md
    assert "- what was | measured" in md
    assert "Failed" not in md and "--quick" not in md


def test_markdown_says_quick_and_failed() -> None:
    r = fake_report(error="the fleet did not start")
    md = render_markdown(Report(started=r.started, quick=True, machine=r.machine, results=r.results))
    assert "with `--quick`" in md
    assert "**Failed:** the fleet did not start" in md


def test_markdown_table_aligns_numbers_right() -> None:
    lines = markdown_table(times_table()).splitlines()
    assert lines[1] == "|---|---:|---:|---:|"
    assert len(lines) == 2 + 3


def test_console_table_shows_ratio_and_notes() -> None:
    console = Console(record=True, width=200)
    print_table(times_table(), console)
    text = console.export_text()
    assert "Join" in text and "speed-up" in text and "3.0×" in text and "what was | measured" in text


# ---------------------------------------------------------------- the machine


def test_machine_info_reads_proc_and_etcd(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text(
        "processor\t: 0\nmodel name\t: Fake CPU 9000\n\nprocessor\t: 1\nmodel name\t: Fake CPU 9000\n"
    )
    (proc / "meminfo").write_text("MemTotal:        4194304 kB\nMemFree: 1 kB\n")
    (proc / "loadavg").write_text("0.50 0.25 0.10 1/100 42\n")
    etcd = tmp_path / "etcd"
    etcd.write_text("#!/bin/sh\necho 'etcd Version: 3.4.99'\necho 'Git SHA: x'\n")
    etcd.chmod(etcd.stat().st_mode | stat.S_IXUSR)
    m = machine_info(proc=proc, etcd=str(etcd))
    assert m["CPU"] == "Fake CPU 9000"
    assert m["cores"] == "2"
    assert m["memory"] == "4.0 GiB"
    assert m["etcd"] == "3.4.99"
    assert m["load average before the run (1/5/15 min)"] == "0.50 / 0.25 / 0.10"
    assert m["Python"].split()[1].count(".") == 2
    assert m["kernel"]


def test_machine_info_without_etcd(tmp_path: Path) -> None:
    m = machine_info(proc=tmp_path, etcd=str(tmp_path / "no-etcd"))
    assert m["etcd"].startswith("not found")
    assert m["memory"] == "unknown"


# ---------------------------------------------------------------- the join benchmark's tables


def test_join_summary_reports_p50_max_ratio_and_target() -> None:
    samples = bench_join.Samples(
        fleetnet={2: [1.0, 1.2, 1.1], 5: [2.0, 2.4, 2.2], 10: [4.0, 5.0, 4.5]},
        one_by_one={2: [3.0, 3.3, 3.1], 5: [8.0, 8.8, 8.4], 10: [18.0, 20.0, 19.0]},
        full_at_connected=[True] * 9,
        applies=100,
    )
    summary, per_run = bench_join.summarize(samples, quick=False)
    header, body = summary.shown()
    assert header[-1] == "speed-up (p50)"
    assert body[0][:6] == ["2", "3", "1.10", "1.20", "3.10", "3.30"]
    assert body[2][6] == "< 10 s: met" and body[2][7] == "4.2×"
    assert body[0][6] == "—"
    assert any("met (max 5.00 s)" in n for n in summary.notes)
    assert any("9 of 9 runs" in n for n in summary.notes)
    assert not any("background refresher" in n for n in summary.notes)
    assert per_run.rows[2] == (10, "4.00, 5.00, 4.50", "18.00, 20.00, 19.00")


def test_join_summary_target_missed_and_quick() -> None:
    missed = bench_join.Samples(
        fleetnet={10: [9.0, 12.0]},
        one_by_one={10: [20.0, 21.0]},
        full_at_connected=[True, False],
        applies=30,
        stray=Counter({"Degraded": 2}),
    )
    summary, _ = bench_join.summarize(missed, quick=False)
    assert summary.rows[0][6] == "< 10 s: MISSED"
    assert any("missed (max 12.00 s)" in n for n in summary.notes)
    assert any("1 of 2 runs" in n for n in summary.notes)
    assert any("(Degraded in 2 of 30 applies, joins and resets together)" in n for n in summary.notes)
    quick = bench_join.Samples(fleetnet={2: [1.0], 5: [2.0]}, one_by_one={2: [3.0], 5: [6.0]})
    summary, _ = bench_join.summarize(quick, quick=True)
    assert any("not measured: --quick stops at 5 clusters" in n for n in summary.notes)


def test_stray_states_ignore_the_outcome_read_just_before_the_operation_ends() -> None:
    assert bench_join.stray_states([], "Connected") == set()
    assert bench_join.stray_states(["Applying", "Applying", "Connected"], "Connected") == set()
    assert bench_join.stray_states(["Applying", "Degraded", "Applying"], "Connected") == {"Degraded"}
    assert bench_join.stray_states(["Connected", "Applying"], "Connected") == {"Connected"}
    assert bench_join.stray_states(["NotConnected"], "Connected") == {"NotConnected"}


# ---------------------------------------------------------------- the registry and the runner


def test_discover_finds_join() -> None:
    found = {b.name: b for b in discover()}
    assert "join" in found
    assert found["join"].module == "benchmarks.bench_join"
    with pytest.raises(ValueError, match=r"no benchmark is named nope; known: .*join"):
        select(list(found.values()), ["nope"])
    assert [b.name for b in select(list(found.values()), ["join", "join"])] == ["join"]


def test_discover_refuses_bad_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "fakebench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    body = "NAME = 'same'\nDESCRIPTION = 'x'\ndef run(quick):\n    return []\n"
    (pkg / "bench_a.py").write_text(body)
    (pkg / "bench_b.py").write_text(body)
    (pkg / "helper.py").write_text("raise RuntimeError('not a benchmark, never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for mod in ("fakebench", "fakebench.bench_a", "fakebench.bench_b", "fakebench.bench_c"):
        monkeypatch.delitem(sys.modules, mod, raising=False)  # undone after the test: no fake module stays
    with pytest.raises(ValueError, match="share the NAME same"):
        discover("fakebench")
    (pkg / "bench_b.py").unlink()
    (pkg / "bench_c.py").write_text("NAME = 'c'\n")
    with pytest.raises(ValueError, match=r"fakebench\.bench_c lacks DESCRIPTION, run"):
        discover("fakebench")


def test_from_module_checks_types() -> None:
    import types

    mod = types.ModuleType("m")
    mod.NAME, mod.DESCRIPTION, mod.run = "", "d", lambda quick: []  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="must be strings"):
        from_module(mod)


def fake_benchmarks() -> list[Benchmark]:
    def ok(quick: bool) -> list[Table]:
        return [times_table()] if quick else [times_table(), times_table()]

    def bad(quick: bool) -> list[Table]:
        raise RuntimeError("no fleet today")

    return [Benchmark("ok", "Works.", "m.ok", ok), Benchmark("bad", "Fails.", "m.bad", bad)]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_mod, "discover", fake_benchmarks)
    monkeypatch.setattr(run_mod, "machine_info", lambda: dict(MACHINE))


@pytest.mark.usefixtures("runner")
def test_runner_writes_json_and_page(tmp_path: Path) -> None:
    results, docs = tmp_path / "r.json", tmp_path / "b.md"
    assert run_mod.main(["--only", "ok", "--results", str(results), "--docs", str(docs)]) == 0
    report = load_json(results)
    assert [r.name for r in report.results] == ["ok"] and len(report.results[0].tables) == 2
    assert "| 2 | 1.00 | 3.00 | 3.0× |" in docs.read_text()


@pytest.mark.usefixtures("runner")
def test_runner_goes_on_after_a_failure_and_keeps_the_page(tmp_path: Path) -> None:
    results, docs = tmp_path / "r.json", tmp_path / "b.md"
    docs.write_text("old numbers\n")
    assert run_mod.main(["--results", str(results), "--docs", str(docs)]) == 1
    report = load_json(results)
    assert report.failed == ["bad"]
    assert report.results[1].error == "RuntimeError: no fleet today"
    assert [r.name for r in report.results] == ["ok", "bad"]
    assert docs.read_text() == "old numbers\n"


@pytest.mark.usefixtures("runner")
def test_runner_quick_leaves_the_default_page_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Path] = []
    monkeypatch.setattr(run_mod, "write_markdown", lambda _r, p: written.append(p))
    assert run_mod.main(["--quick", "--only", "ok", "--results", str(tmp_path / "r.json")]) == 0
    assert written == []
    assert load_json(tmp_path / "r.json").quick


@pytest.mark.usefixtures("runner")
def test_runner_unknown_name_and_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_mod.main(["--only", "nope"]) == 2
    assert run_mod.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "no benchmark is named nope" in out and "ok" in out and "Fails." in out
