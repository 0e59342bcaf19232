"""The services benchmark's tables on made-up samples (nothing here starts a fleet)."""

from __future__ import annotations

from benchmarks import bench_services as bs


def samples() -> bs.Samples:
    return bs.Samples(
        path={
            bs.NEW_CONN[0]: {"direct": [5000.0, 5200.0, 5100.0], "vip": [4900.0, 5000.0, 4950.0]},
            bs.KEEPALIVE[0]: {"direct": [15000.0], "vip": [12000.0]},
            bs.THROUGHPUT[0]: {"direct": [12.5], "vip": [12.25]},
        },
        fleet={0: [6000.0, 100.0], 1: [5000.0, 100.0], 1000: [5050.0, 100.0], 10000: [4900.0, 100.0]},
        iptables={0: [8000.0, 100.0], 1: [5000.0, 100.0], 1000: [4500.0, 100.0], 10000: [2000.0, 100.0]},
        fleet_install={1: [0.1], 1000: [15.0], 10000: [150.0]},
        iptables_install={1: [5.0], 1000: [200.0], 10000: [2200.0]},
        path_cpu={
            bs.NEW_CONN[0]: {"direct": [160.0, 170.0, 165.0], "vip": [162.0, 168.0, 170.0]},
            bs.THROUGHPUT[0]: {"direct": [500.0], "vip": [600.0]},
        },
        fleet_cpu={0: [150.0], 1: [160.0], 1000: [161.0], 10000: [162.0]},
        iptables_cpu={0: [150.0], 1: [160.0], 1000: [180.0], 10000: [360.0]},
        loadavg=["1.0 / 1.0 / 1.0", "2.0 / 2.0 / 2.0"],
    )


def test_path_table_compares_vip_with_direct() -> None:
    path, _, _, _, every = bs.summarize(samples(), quick=False)
    rows = {r[0]: r for r in path.rows}
    new = rows[bs.NEW_CONN[0]]
    # best of the rounds, and the median of per-round ratios (98.0, 96.2, 97.1)
    assert new[3:7] == (5200, 5000, 96.2, 97.1)
    assert new[7] == "≥ 95%: met"
    assert rows[bs.KEEPALIVE[0]][7] == "≥ 95%: MISSED"
    assert rows[bs.THROUGHPUT[0]][3:5] == (12.5, 12.25)
    ratios = path.ratios()
    assert ratios[0] is not None and abs(ratios[0] - 5000 / 5200) < 1e-9
    assert len(every.rows) == 6 + 4 + 4 + 4 + 4 + 4
    assert every.rows[0][1:] == (5200, 5100, "5,000, 5,200, 5,100")


def test_cpu_tables_read_medians_against_the_cpu_limit() -> None:
    _, cpu, _, scaling_cpu, _ = bs.summarize(samples(), quick=False)
    rows = {r[0]: r for r in cpu.rows}
    assert rows[bs.NEW_CONN[0]][3:7] == (165.0, 168.0, 101.8, "≤ 105.3%: met")
    assert rows[bs.THROUGHPUT[0]][1] == "µs per MiB" and rows[bs.THROUGHPUT[0]][6] == "≤ 105.3%: MISSED"
    assert cpu.ratios()[0] == 165.0 / 168.0
    by_n = {r[0]: r for r in scaling_cpu.rows}
    assert by_n[10000][1:6] == (162.0, 101.2, 360.0, 225.0, "≤ 105.3% of 1: met")
    assert scaling_cpu.ratios()[-1] == 360.0 / 162.0


def test_best_is_the_fastest_round() -> None:
    assert bs.best([3.0, 9.0, 4.0]) == 9.0
    assert bs.best([]) is None


def test_scaling_table_reads_each_curve_against_its_own_one_service_rate() -> None:
    _, _, scaling, _, _ = bs.summarize(samples(), quick=False)
    rows = {r[0]: r for r in scaling.rows}
    assert rows[bs.POD_IP_ROW][2] is None and rows[bs.POD_IP_ROW][4] is None
    assert rows[1][2] == 100.0 and rows[1][4] == 100.0
    assert rows[10000][2] == 98.0 and rows[10000][4] == 40.0
    assert rows[10000][7] == "≥ 95% of 1: met"
    assert rows[1000][7] is None
    assert scaling.ratios()[-1] == 4900 / 2000
    assert any("2.0 / 2.0 / 2.0" in n for n in scaling.notes)


def test_missed_target_and_missing_runs() -> None:
    s = samples()
    s.fleet[10000] = [4000.0, 100.0]
    s.path.pop(bs.KEEPALIVE[0])
    path, _, scaling, _, _ = bs.summarize(s, quick=True)
    assert [r[0] for r in path.rows] == [bs.NEW_CONN[0], bs.THROUGHPUT[0]]
    assert scaling.rows[-1][7] == "≥ 95% of 1: MISSED"
    assert any("2 rounds of 1 s runs" in n for n in path.notes)


def test_interleaved_alternates_the_order() -> None:
    calls: list[str] = []

    def f(name: str) -> float:
        calls.append(name)
        return float(len(calls))

    fns = {"a": lambda: f("a"), "b": lambda: f("b")}
    assert [bs.interleaved(r, fns) for r in range(3)] == [
        {"a": 1.0, "b": 2.0},
        {"b": 3.0, "a": 4.0},
        {"a": 5.0, "b": 6.0},
    ]
    assert calls == ["a", "b", "b", "a", "a", "b"]


def test_paired_pct_compares_values_of_the_same_round() -> None:
    # the host got twice as busy in round 2: medians of each side would mislead, pairs do not
    assert bs.paired_pct([90.0, 45.0, 90.0], [100.0, 50.0, 100.0]) == 90.0
    assert bs.paired_pct([], [1.0]) is None
    assert bs.paired_pct([1.0], [0.0]) is None
