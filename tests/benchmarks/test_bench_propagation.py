"""The propagation benchmark's statistics and tables on made-up samples (nothing here starts a fleet)."""

from __future__ import annotations

import pytest

from benchmarks import bench_propagation as bp


def test_percentile_is_nearest_rank() -> None:
    xs = [float(x) for x in range(1, 21)]
    assert bp.percentile(xs, 50) == 10.0
    assert bp.percentile(xs, 99) == 20.0
    assert bp.percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        bp.percentile([], 50)


def sample(kind: str, ms: float, local: float | None = None) -> bp.Sample:
    direction = "pod added" if kind == bp.ENDPOINT else "shared=false"
    return bp.Sample(kind, direction, ms, {"c2": ms - 5, "c3": ms}, local, 20.0)


def test_summary_rows_per_size_and_kind() -> None:
    s = bp.Samples(
        by_size={
            3: [sample(bp.ENDPOINT, 100, 50), sample(bp.SHARED, 30), sample(bp.ENDPOINT, 120, 60)],
            10: [sample(bp.ENDPOINT, 600, 80), sample(bp.SHARED, 40)],
        }
    )
    summary, detail = bp.summarize(s, quick=True)
    rows = {(r[0], r[1]): r for r in summary.rows}
    assert set(rows) == {(n, k) for n in (3, 10) for k in (bp.ENDPOINT, bp.SHARED, bp.ALL)}
    ep3 = rows[(3, bp.ENDPOINT)]
    assert ep3[2:7] == (2, 100, 120, 120, 140)
    assert ep3[7] == 50 and ep3[8] == 20.0
    assert rows[(3, bp.SHARED)][7] is None
    assert rows[(3, bp.ALL)][10] == "met"
    assert rows[(10, bp.ALL)][10] == "MISSED"
    ratios = dict(zip(((r[0], r[1]) for r in summary.rows), summary.ratios(), strict=True))
    assert ratios[(3, bp.ALL)] == pytest.approx(500 / 120)
    assert (3, "pod added", 100, "100, 120") in detail.rows
    assert any(r[1] == "slowest members (their p50)" and str(r[3]).startswith("c3") for r in detail.rows)
