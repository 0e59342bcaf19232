"""managedFields and server-side apply: who owns what, what an applier stops naming, conflicts."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from fleetnet.kube import fieldmanager as fm
from fleetnet.kube import schema

DEP = schema.root("apps/v1", "Deployment")
NOW = "2026-12-07T12:00:00Z"


def deployment(replicas: int | None = 1, image: str = "x", **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    md: dict[str, Any] = {"name": "d"}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md, "spec": spec}


def managers(obj: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {(e["manager"], e["operation"]): e["fieldsV1"] for e in obj["metadata"].get("managedFields", [])}


def test_fieldsv1_encodes_keys_values_and_self_marks() -> None:
    s = fm.fields_of(deployment(labels_x="y") | {"metadata": {"name": "d", "finalizers": ["f"]}}, DEP)
    enc = fm.encode(s)
    containers = enc["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers == {".": {}, 'k:{"name":"c"}': {".": {}, "f:image": {}, "f:name": {}}}
    assert enc["f:metadata"]["f:finalizers"] == {".": {}, 'v:"f"': {}}
    assert fm.decode(enc) == s
    assert ("f:metadata", "f:name") not in s  # identity is nobody's field


def test_apply_creates_then_drops_what_it_stops_naming() -> None:
    obj = fm.apply(None, deployment(replicas=3, team="a"), "alice", False, DEP, NOW)
    assert obj["spec"]["replicas"] == 3 and ("alice", "Apply") in managers(obj)
    again = fm.apply(obj, deployment(replicas=None, team="a"), "alice", False, DEP, NOW)
    assert "replicas" not in again["spec"] and again["metadata"]["labels"] == {"team": "a"}


def test_a_value_someone_else_set_differently_conflicts_unless_forced() -> None:
    created = deployment(replicas=1)
    fm.update_managed_fields(None, created, "kubectl-client-side-apply", "Update", None, DEP, NOW)
    with pytest.raises(fm.ConflictError) as e:
        fm.apply(created, deployment(replicas=2), "bob", False, DEP, NOW)
    assert str(e.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )
    assert [(c.manager, c.field) for c in e.value.conflicts] == [("kubectl-client-side-apply", ".spec.replicas")]
    forced = fm.apply(created, deployment(replicas=2), "bob", True, DEP, NOW)
    assert forced["spec"]["replicas"] == 2
    old = managers(forced)[("kubectl-client-side-apply", "Update")]
    assert "f:replicas" not in old["f:spec"] and "f:replicas" in managers(forced)[("bob", "Apply")]["f:spec"]


def test_the_same_value_is_shared_not_a_conflict() -> None:
    obj = fm.apply(None, deployment(replicas=2), "alice", False, DEP, NOW)
    both = fm.apply(obj, deployment(replicas=2), "bob", False, DEP, NOW)
    assert {m for m, _ in managers(both)} == {"alice", "bob"}
    # alice stops naming replicas: bob still owns it, so it stays
    kept = fm.apply(both, deployment(replicas=None), "alice", False, DEP, NOW)
    assert kept["spec"]["replicas"] == 2


def test_keyed_lists_merge_by_key_under_apply() -> None:
    obj = fm.apply(None, deployment(), "alice", False, DEP, NOW)
    other = copy.deepcopy(deployment())
    other["spec"]["template"]["spec"]["containers"] = [{"name": "side", "image": "s"}]
    del other["spec"]["replicas"]
    both = fm.apply(obj, other, "bob", False, DEP, NOW)
    assert [c["name"] for c in both["spec"]["template"]["spec"]["containers"]] == ["c", "side"]


def test_an_update_moves_ownership_of_what_it_changed() -> None:
    obj = fm.apply(None, deployment(replicas=1), "alice", False, DEP, NOW)
    new = copy.deepcopy(obj)
    new["spec"]["replicas"] = 5
    fm.update_managed_fields(obj, new, "hpa", "Update", None, DEP, NOW)
    m = managers(new)
    assert m[("hpa", "Update")] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in m[("alice", "Apply")]["f:spec"]
    # a status write is recorded with its subresource
    st = copy.deepcopy(new)
    st["status"] = {"replicas": 5}
    fm.update_managed_fields(new, st, "kube-controller-manager", "Update", "status", DEP, NOW)
    entry = next(e for e in st["metadata"]["managedFields"] if e["manager"] == "kube-controller-manager")
    assert entry["subresource"] == "status"


def test_kubectl_server_side_apply_takes_over_its_own_client_side_fields() -> None:
    live = deployment(replicas=1)
    live["metadata"]["annotations"] = {fm.LAST_APPLIED: json.dumps(deployment(replicas=1))}
    fm.update_managed_fields(None, live, "kubectl-client-side-apply", "Update", None, DEP, NOW)
    out = fm.apply(live, deployment(replicas=2), "kubectl", False, DEP, NOW)
    assert out["spec"]["replicas"] == 2
    assert json.loads(out["metadata"]["annotations"][fm.LAST_APPLIED])["spec"]["replicas"] == 2
    with pytest.raises(fm.ConflictError):  # another manager name gets no such pass
        fm.apply(live, deployment(replicas=2), "someone", False, DEP, NOW)


def test_default_manager_is_the_user_agent_program() -> None:
    assert fm.default_manager("kubectl/v1.37.1 (linux/amd64) kubernetes/abc") == "kubectl"
    assert fm.default_manager("") == "unknown"
