"""Pure decisions of joining networks: selectors, what-if rows, cilium ids, CIDRs, prerequisites."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleetnet.errors import Conflict, InvalidInput
from fleetnet.model.member import LocalClusterSpec, Member, MeshProperties
from fleetnet.model.profile import MAX_MEMBERS_PER_NETWORK
from fleetnet.plan import cidr
from fleetnet.plan.ids import allocate_ids
from fleetnet.plan.prereq import check_prerequisites
from fleetnet.plan.selector import format_selector, matches, parse_selector
from fleetnet.plan.whatif import plan_apply

# ---------------------------------------------------------------- selector


def test_selector_parses_pairs_sorted() -> None:
    assert parse_selector("network=blue, env=prod") == (("env", "prod"), ("network", "blue"))


def test_empty_selector_selects_nothing() -> None:
    assert parse_selector("") == ()
    assert not matches((), {"network": "blue"})


@pytest.mark.parametrize("bad", ["network!=blue", "network==blue", "network in (a,b)", "network", "!network", "a=b=c"])
def test_selector_refuses_other_operators(bad: str) -> None:
    with pytest.raises(InvalidInput) as e:
        parse_selector(bad)
    assert "key=value" in str(e.value) or "not a valid" in str(e.value)


def test_selector_length_limit() -> None:
    with pytest.raises(InvalidInput, match="512"):
        parse_selector("a=" + "b" * 600)


def test_selector_conflicting_values_refused() -> None:
    with pytest.raises(InvalidInput, match="twice"):
        parse_selector("a=b,a=c")


keys = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True)
values = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)
label_maps = st.dictionaries(keys, values, max_size=5)


@given(label_maps, label_maps)
def test_selector_matches_iff_subset(sel: dict[str, str], labels: dict[str, str]) -> None:
    parsed = parse_selector(",".join(f"{k}={v}" for k, v in sel.items()))
    assert parse_selector(format_selector(parsed)) == parsed
    expected = bool(sel) and all(labels.get(k) == v for k, v in sel.items())
    assert matches(parsed, labels) == expected


# ---------------------------------------------------------------- what-if


def member(
    name: str,
    labels: dict[str, str] | None = None,
    profile: str | None = None,
    cid: int = 1,
    state: str = "Connected",
    index: int = 1,
    pod_cidr: str | None = None,
) -> Member:
    mesh = (
        None
        if profile is None
        else MeshProperties(profile=profile, cilium_id=cid, cilium_name=name, state=state, last_updated_at=0.0)
    )  # type: ignore[arg-type]
    return Member(
        name=name,
        kubernetes_version="1.33.6",
        cilium_version="1.18.3",
        labels=labels or {},
        local=LocalClusterSpec(
            index=index,
            pod_cidr=pod_cidr or cidr.default_pod_cidr(index),
            service_cidr=cidr.default_service_cidr(min(index, cidr.MAX_LOCAL_CLUSTERS)),
            nodes=1,
        ),
        mesh=mesh,
    )


def test_whatif_rows_add_remove_nochange_error() -> None:
    ms = [
        member("c1", {"network": "blue"}, index=1),
        member("c2", {"network": "blue"}, profile="blue", index=2),
        member("c3", {}, profile="blue", index=3),
        member("c4", {"network": "blue"}, profile="red", index=4),
        member("c5", {"network": "green"}, index=5),
    ]
    rows = plan_apply("blue", parse_selector("network=blue"), ms, known)
    assert [(r.action, r.name) for r in rows] == [("Add", "c1"), ("-", "c2"), ("Remove", "c3"), ("Error", "c4")]
    assert rows[3].error is not None and "'red'" in rows[3].error


def test_whatif_network_full_is_error_row() -> None:
    staying = [
        member(f"m{i:03d}", {"n": "x"}, profile="p", cid=i + 1, index=i + 1, pod_cidr=f"10.200.{i}.0/24")
        for i in range(MAX_MEMBERS_PER_NETWORK - 1)
    ]
    new = [
        member("za", {"n": "x"}, index=300, pod_cidr="10.201.0.0/24"),
        member("zb", {"n": "x"}, index=301, pod_cidr="10.202.0.0/24"),
    ]
    rows = plan_apply("p", parse_selector("n=x"), staying + new, known)
    by = {r.name: r for r in rows}
    assert by["za"].action == "Add"
    assert by["zb"].action == "Error" and "255" in (by["zb"].error or "")


@given(st.lists(st.tuples(st.booleans(), st.sampled_from([None, "p", "q"])), max_size=30))
def test_whatif_is_a_partition(spec: list[tuple[bool, str | None]]) -> None:
    ms = [
        member(f"m{i}", {"n": "x"} if sel else {}, profile=prof, cid=i + 1, index=i + 1)
        for i, (sel, prof) in enumerate(spec)
    ]
    rows = plan_apply("p", parse_selector("n=x"), ms, known)
    names = [r.name for r in rows]
    assert len(names) == len(set(names))
    for m, (sel, prof) in zip(ms, spec, strict=True):
        row = next((r for r in rows if r.name == m.name), None)
        if prof == "p":
            assert row is not None and row.action == ("-" if sel else "Remove")
        elif sel:
            assert row is not None and row.action == ("Error" if prof else "Add")
        else:
            assert row is None


# ---------------------------------------------------------------- ids


def test_ids_lowest_free_and_stable() -> None:
    assert allocate_ids({"a": 1, "b": 3}, ["c", "d"]) == {"c": 2, "d": 4}


def test_ids_exhausted() -> None:
    with pytest.raises(Conflict):
        allocate_ids({f"m{i}": i for i in range(1, 256)}, ["x"])


@given(st.sets(st.integers(1, 255), max_size=60), st.integers(0, 40))
def test_ids_unique_in_range_and_kept(kept_ids: set[int], n: int) -> None:
    kept = {f"k{i}": i for i in kept_ids}
    joining = [f"j{i}" for i in range(n)]
    new = allocate_ids(kept, joining)
    allids = list(kept.values()) + list(new.values())
    assert len(set(allids)) == len(allids)
    assert all(1 <= i <= 255 for i in allids)
    assert set(new) == set(joining)


# ---------------------------------------------------------------- cidr


@given(st.integers(1, 250))
def test_default_cidrs_never_overlap_each_other(i: int) -> None:
    j = i % 250 + 1
    assert not cidr.overlaps(cidr.default_pod_cidr(i), cidr.default_pod_cidr(j))
    assert not cidr.overlaps(cidr.default_pod_cidr(i), cidr.default_service_cidr(j))


@given(st.integers(1, 16), st.integers(14, 22))
def test_node_cidrs_disjoint_inside_cluster(nodes: int, prefix: int) -> None:
    cluster = f"10.0.0.0/{prefix}"
    blocks = cidr.node_cidrs(cluster, nodes)
    assert len(blocks) == nodes
    nets = [ipaddress.IPv4Network(b) for b in blocks]
    assert all(n.subnet_of(ipaddress.IPv4Network(cluster)) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])


def test_node_cidrs_too_small() -> None:
    with pytest.raises(InvalidInput, match="too small"):
        cidr.node_cidrs("10.0.0.0/27", 4)


# ---------------------------------------------------------------- prerequisites


def known(v: str) -> bool:
    return v in {"1.33.6", "1.31.8"}


def with_local(m: Member, **kw: object) -> Member:
    from dataclasses import replace

    assert m.local is not None
    return replace(m, local=replace(m.local, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"network_dataplane": "none"}, "Cilium dataplane"),
        ({"routing_mode": "tunnel"}, "native routing"),
        ({"self_managed_clustermesh": True}, "self-managed"),
        ({"underlay": "other"}, "flat network"),
        ({"pod_cidr": "10.2.0.0/16"}, "overlaps"),
    ],
)
def test_prerequisite_failures_name_the_reason(change: dict[str, object], needle: str) -> None:
    peer = member("c2", index=2)
    m = with_local(member("c1"), **change)
    reason = check_prerequisites(m, [peer], known)
    assert reason is not None and needle in reason and "c1" in reason


def test_prerequisite_versions() -> None:
    from dataclasses import replace

    assert "catalog" in (check_prerequisites(replace(member("c1"), kubernetes_version="1.99.0"), [], known) or "")
    assert "1.32" in (check_prerequisites(replace(member("c1"), kubernetes_version="1.31.8"), [], known) or "")
    assert check_prerequisites(member("c1"), [member("c2", index=2)], known) is None
