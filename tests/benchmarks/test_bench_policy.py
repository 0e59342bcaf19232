"""The policy benchmark's tables on made-up samples, and its pure helpers (nothing here starts a fleet)."""

from __future__ import annotations

from benchmarks import _policy_tools as tools
from benchmarks import bench_policy as bp


def lat(p50: float, mean: float | None = None) -> tools.Latency:
    return tools.Latency(requests=100, mean_us=mean or p50 * 1.5, p50_us=p50, p90_us=p50 * 3, p99_us=p50 * 10)


def rc(writes: float, policy: float, ipcache: float, lag: float) -> bp.Recompute:
    return bp.Recompute(writes=writes, policy=policy, ipcache=ipcache, policy_lag=lag, ipcache_lag=lag)


def samples() -> bp.Samples:
    return bp.Samples(
        ab={
            (bp.BEFORE, bp.ECHO): [3000.0, 3100.0],
            (bp.BEFORE, bp.OPEN): [3000.0, 2900.0],
            (bp.DURING, bp.ECHO): [2900.0, 2950.0, 3000.0],
            (bp.DURING, bp.OPEN): [3000.0, 3000.0, 3100.0],
        },
        latency={
            (bp.BEFORE, bp.ECHO): [lat(300.0)],
            (bp.BEFORE, bp.OPEN): [lat(300.0)],
            (bp.DURING, bp.ECHO): [lat(400.0), lat(420.0)],
            (bp.DURING, bp.OPEN): [lat(300.0), lat(320.0)],
        },
        recompute={
            ("add", bp.BASE_N): [rc(0.05, 0.06, 0.07, 0.01)],
            ("add", bp.SYNTHETIC): [rc(3.0, 2.0, 3.2, 0.2)],
            ("remove", bp.SYNTHETIC): [rc(3.0, 3.1, 1.6, 0.1)],
        },
        inproc={10: [bp.Inproc(0.1, 0.1, 0.2)], 1000: [bp.Inproc(2.0, 5.0, 13.0)]},
        inproc_idle={10: [bp.Inproc(0.05, 0.01, 0.0)], 1000: [bp.Inproc(0.05, 0.01, 0.0)]},
        inproc_entries={10: 11, 1000: 1001},
        policy_entries=[1001],
        ipcache_entries=[1004],
        loadavg=["1.0 / 1.0 / 1.0", "2.0 / 2.0 / 2.0"],
    )


def test_rate_table_compares_the_pod_with_policy_against_the_one_without() -> None:
    rates, latency, _, _, every = bp.summarize(samples(), quick=False)
    (row,) = rates.rows
    assert row[1:5] == (3, 3000, 2950, 96.8)  # paired: the median of 2900/3000, 2950/3000, 3000/3100
    assert row[5] == 103.4  # A/A before the policy: the mean of 3000/3000 and 3100/2900
    assert row[6] == "≥ 95%: met"
    assert rates.ratios()[0] == 2950 / 3000
    assert any("1001 allowed identities" in n and "1004 entries" in n for n in rates.notes)
    rows = {r[0]: r for r in latency.rows}
    assert rows["p50"][2:5] == (310, 410, 75.6)
    assert rows["p50"][6] == "≥ 95%: MISSED"
    assert rows["p50"][5] == 100.0
    assert len(every.rows) == 4 * 3 + 3 * 3


def test_recompute_table_reads_per_endpoint_cost() -> None:
    _, _, recompute, _, _ = bp.summarize(samples(), quick=True)
    rows = {r[0]: r for r in recompute.rows}
    policy = rows["add: c1's policy map complete, from c2's first write"]
    assert policy[2:6] == (0.06, 2.0, 6000, 2000)
    assert recompute.ratios()[1] == 3.0
    # no baseline sample for removals: the cells stay empty, the ratio too
    removal = rows["remove: c2's etcd: first to last write"]
    assert removal[2] is None and removal[4] is None
    assert any("2.0 / 2.0 / 2.0" in n for n in recompute.notes)


def test_inproc_table_reads_against_the_smallest_size() -> None:
    *_, inproc, _ = bp.summarize(samples(), quick=True)
    first, big = inproc.rows
    assert first[8] == first[9] == 40.0
    assert big[2] == 1001 and big[6] == 20.0 and big[8] == 20.0
    assert inproc.ratios() == [1.0, 2.0]


def test_synthetic_endpoints_are_distinct_and_in_range() -> None:
    eps = tools.synthetic_endpoints(
        5, start=3, cluster="c2", cluster_id=2, pod_labels={"app": "bench-client"}, cidr="10.2.128.0/17"
    )
    assert [e.ip for e in eps] == [f"10.2.128.{i}" for i in range(4, 9)]
    assert [e.identity for e in eps] == [(2 << 16) + tools.IDENTITY_OFFSET + i for i in range(3, 8)]
    assert len({e.labels_key for e in eps}) == 5
    assert all("k8s:io.cilium.k8s.policy.cluster=c2" in e.labels_key for e in eps)
    records = tools.etcd_records(eps, "default", "100.64.0.3")
    keys = list(records)
    assert keys[0] == f"cilium/state/identities/v1/id/{eps[0].identity}"
    assert keys[5] == "cilium/state/ip/v1/default/10.2.128.4"


def test_written_finds_the_last_write_of_a_kind() -> None:
    w = tools.Written(keys=("a/1", "b/1", "a/2", "b/2"), first=1.0, done=(1.1, 1.2, 1.3, 1.4))
    assert w.last == 1.4
    assert w.last_under("a/") == 1.3
    assert w.last_under("c/") == 1.0


def test_parse_ab() -> None:
    out = "Complete requests:      4000\nFailed requests:        3\nRequests per second:    1999.50 [#/sec] (mean)\n"
    assert tools.parse_ab(out) == 1999.5
    for bad in ("Complete requests: 0\nRequests per second: 0 [#/sec]", out.replace("        3", "        400")):
        try:
            tools.parse_ab(bad)
        except tools.ToolError:
            continue
        raise AssertionError(f"parse_ab accepted {bad!r}")
